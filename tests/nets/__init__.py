"""Tests of srlab.nets."""
