"""Arrow-backed datasets with HF `datasets` calls: Dataset, DatasetDict, load_dataset, and the trainer contract.

Read in this order: arrow_io.py, dataset.py, transforms.py, dataset_dict.py, splits.py, readers.py, data_files.py,
load.py, columns.py.
Not included: IterableDataset / streaming (memory-mapping gives the same flat RAM).
"""
from tinyst.datasets.columns import check_dataset_for_loss, input_columns, label_column, warn_column_order  # noqa: F401
from tinyst.datasets.dataset import Dataset  # noqa: F401
from tinyst.datasets.dataset_dict import DatasetDict  # noqa: F401
from tinyst.datasets.load import load_dataset, load_from_disk  # noqa: F401
