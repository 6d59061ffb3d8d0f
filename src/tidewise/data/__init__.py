"""Data in: validated OHLCV loading, embedded datasets, and as-of context alignment."""
from tidewise.data.context import asof_align, load_context
from tidewise.data.datasets import DATASETS, list_datasets, load_dataset
from tidewise.data.loading import DataError, load_ohlcv, validate_ohlcv

__all__ = ["DATASETS", "DataError", "asof_align", "list_datasets", "load_context", "load_dataset",
           "load_ohlcv", "validate_ohlcv"]
