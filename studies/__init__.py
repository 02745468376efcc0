"""The study files shipped with optuna-ohgw (installed as package data: optuna_ohgw_studies)."""
