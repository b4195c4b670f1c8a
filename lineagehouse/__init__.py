"""Lineagehouse: an OpenLineage backend on Kafka and ClickHouse."""

__version__ = "0.1.0"
