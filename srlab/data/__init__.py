"""Data for srlab: image reading, degradations (the report's, Real-ESRGAN's), paired datasets and the SRDataModule.

Import from the submodules (``srlab.data.images``, ``.degradations``, ``.realesrgan``, ``.transforms``,
``.datasets``, ``.datamodule``, ``.samples``, ``.benchmarks``, ``.resize``); this package stays
import-light so tools need not load Lightning.
"""
