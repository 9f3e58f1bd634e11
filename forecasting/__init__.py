"""Looking ahead: features, XGBoost point and quantile models, backtests, a model
registry, and anomaly detection that tells the guardrails which data to trust."""
