"""Pure: one identity for a dataset that reaches us under several names.

OpenLineage names a dataset by a namespace (where it lives: `postgres://host:5432`,
`s3://bucket`, `file`) and a name (what it is there: `db.schema.table`, `path/to/dir`).
Emitters differ in the details: `postgresql://` or `postgres://`, a missing default
port, `s3a://` from Spark, trailing slashes, a partition directory (`.../dt=2024-05-01`)
instead of the table's root. `canonical` maps those variants to one (namespace, name);
the names as sent are always kept next to it. The `symlinks` facet joins a path to its
catalog table (Spark writes `s3://bucket/warehouse/t` with a symlink to the Hive table
`db.t`): the table identifier wins, so both names share one `dataset_key`.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

SCHEME_ALIASES = {
    "postgresql": "postgres",
    "s3a": "s3",
    "s3n": "s3",
    "gcs": "gs",
    "mariadb": "mysql",
}
DEFAULT_PORTS = {
    "postgres": 5432,
    "mysql": 3306,
    "redshift": 5439,
    "mssql": 1433,
    "oracle": 1521,
}
# Namespaces whose names are paths: partition directories and slashes are normalised.
PATH_SCHEMES = {"s3", "gs", "hdfs", "file", "abfss", "wasbs", "dbfs", "viewfs"}
# Object stores name objects relative to the bucket: no leading slash.
BUCKET_SCHEMES = {"s3", "gs", "abfss", "wasbs"}


def _namespace(namespace: str) -> tuple[str, str]:
    """(normalised namespace, its scheme)."""
    text = namespace.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep:
        lowered = text.lower()
        return lowered if lowered in PATH_SCHEMES else text, lowered
    scheme = scheme.lower()
    scheme = SCHEME_ALIASES.get(scheme, scheme)
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon or not port.isdigit():
        host, port = hostport, ""
    if not port and scheme in DEFAULT_PORTS and host:
        port = str(DEFAULT_PORTS[scheme])
    hostport = f"{host.lower()}:{port}" if port else host.lower()
    authority = f"{userinfo}{at}{hostport}"
    return f"{scheme}://{authority}{slash}{path}", scheme


def _path_name(name: str, bucket: bool) -> str:
    parts = [part for part in name.split("/") if part]
    while len(parts) > 1 and "=" in parts[-1]:  # partition directories: key=value
        parts.pop()
    joined = "/".join(parts)
    return joined if bucket or not name.startswith("/") else "/" + joined


@lru_cache(maxsize=65536)
def canonical(namespace: str, name: str) -> tuple[str, str]:
    """The normalised (namespace, name) of a dataset name as sent."""
    norm_namespace, scheme = _namespace(namespace)
    if scheme in PATH_SCHEMES:
        return norm_namespace, _path_name(name.strip(), scheme in BUCKET_SCHEMES)
    return norm_namespace, name.strip()


def dataset_key(namespace: str, name: str) -> str:
    """Identity of a normalised (namespace, name): 16 hex digits of BLAKE2b."""
    digest = hashlib.blake2b(f"{namespace}\0{name}".encode(), digest_size=8)
    return digest.hexdigest()


def symlink_table(facets: Any) -> tuple[str, str] | None:
    """The catalog table a `symlinks` facet names (type TABLE), if any; the smallest
    one when there are several, so the choice does not depend on their order."""
    if type(facets) is not dict:
        return None
    symlinks = facets.get("symlinks")
    if type(symlinks) is not dict:
        return None
    identifiers = symlinks.get("identifiers")
    if type(identifiers) is not list:
        return None
    tables = [
        (ident["namespace"], ident["name"])
        for ident in identifiers
        if type(ident) is dict
        and str(ident.get("type", "")).upper() == "TABLE"
        and type(ident.get("namespace")) is str
        and type(ident.get("name")) is str
    ]
    return min(tables) if tables else None


def identity(namespace: str, name: str, facets: Any) -> tuple[str, str, str]:
    """(dataset_key, canonical namespace, canonical name) of a dataset as sent."""
    table = symlink_table(facets)
    target = canonical(*table) if table else canonical(namespace, name)
    return dataset_key(*target), target[0], target[1]
