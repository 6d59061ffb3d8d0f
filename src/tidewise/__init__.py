"""tidewise: lean, honest single-stock forecasting, and a drift toolkit shared with traffic classification.

    import tidewise
    res = tidewise.evaluate("msft", models=["always_up", "lgbm", "garch", "lean"])
    res.leaderboard            # a DataFrame: skill, significance and compute per model
    tidewise.forecast("msft")  # tomorrow's direction probability, quantiles and volatility
"""
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import tidewise` (and `import tidewise.drift`) stays light.
    if name in ("evaluate", "forecast"):
        from tidewise import api

        return getattr(api, name)
    if name in ("load_ohlcv", "load_dataset", "list_datasets", "DataError"):
        import tidewise.data as data

        return getattr(data, name)
    raise AttributeError(f"module 'tidewise' has no attribute {name!r}")


__all__ = ["evaluate", "forecast", "load_ohlcv", "load_dataset", "list_datasets", "DataError"]
