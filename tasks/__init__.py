"""Prefect tasks and the domain code they call: one module per outside system or concern.

Pure logic here stays free of Prefect so it unit-tests fast. Tasks never import :mod:`flows`.
"""
