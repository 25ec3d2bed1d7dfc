"""Evaluation: Token Optimization search and accuracy across budgets."""
