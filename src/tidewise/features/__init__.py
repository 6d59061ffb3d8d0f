from tidewise.features.build import FeatureConfig, FoldScaler, build_features, build_targets, log_returns

__all__ = ["FeatureConfig", "FoldScaler", "build_features", "build_targets", "log_returns"]
