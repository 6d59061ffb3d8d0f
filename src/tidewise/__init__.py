"""tidewise: lean, honest single-stock forecasting, and a drift toolkit shared with traffic classification."""
__version__ = "0.1.0"
