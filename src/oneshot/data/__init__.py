"""Data: Omniglot archives and cache, named splits, Lake's runs, users' folders."""

from .dataset import Dataset

__all__ = ["Dataset"]
