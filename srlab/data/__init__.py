"""Data for srlab: image reading, the report's degradation, paired datasets and the SRDataModule.

Import from the submodules (``srlab.data.images``, ``.degradations``, ``.transforms``, ``.datasets``,
``.datamodule``, ``.samples``); this package stays import-light so tools need not load Lightning.
"""
