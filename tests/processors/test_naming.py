"""Dataset identity: the variants of one name map to one key; names as sent are kept."""

from __future__ import annotations

import pytest

from lineagehouse.processors.naming import canonical, identity, symlink_table


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (
            ("postgresql://DB.example.com", "shop.public.t"),
            ("postgres://db.example.com:5432", "shop.public.t"),
        ),
        (
            ("postgres://db.example.com:5432/", "shop.public.t"),
            ("postgres://db.example.com:5432", "shop.public.t"),
        ),
        (("mysql://h", "db.t"), ("mysql://h:3306", "db.t")),
        (("s3a://bucket", "/warehouse/t/"), ("s3://bucket", "warehouse/t")),
        (("s3://bucket", "warehouse/t/dt=2024-05-01/hour=3"), ("s3://bucket", "warehouse/t")),
        (("gcs://bucket", "a//b"), ("gs://bucket", "a/b")),
        (("file", "/data/t/part=1"), ("file", "/data/t")),
        (("hdfs://nn:8020", "/user/hive/t"), ("hdfs://nn:8020", "/user/hive/t")),
        (("bigquery", "p.d.t"), ("bigquery", "p.d.t")),
        (("snowflake://ORG-ACCOUNT", "DB.SCHEMA.T"), ("snowflake://org-account", "DB.SCHEMA.T")),
    ],
)
def test_canonical_names(sent: tuple[str, str], expected: tuple[str, str]) -> None:
    assert canonical(*sent) == expected


def test_variants_share_a_key_and_distinct_tables_do_not() -> None:
    a = identity("postgresql://db", "shop.public.t", None)[0]
    b = identity("postgres://db:5432", "shop.public.t", None)[0]
    c = identity("postgres://db:5432", "shop.public.u", None)[0]
    assert a == b != c
    assert len(a) == 16


def test_symlink_table_is_order_independent_and_only_tables() -> None:
    def facets(identifiers: list[dict]) -> dict:
        return {"symlinks": {"identifiers": identifiers}}

    t1 = {"namespace": "hive://m", "name": "db.b", "type": "TABLE"}
    t2 = {"namespace": "hive://m", "name": "db.a", "type": "table"}
    other = {"namespace": "x", "name": "y", "type": "LOCATION"}
    assert symlink_table(facets([t1, t2, other])) == ("hive://m", "db.a")
    assert symlink_table(facets([other, t2, t1])) == ("hive://m", "db.a")
    assert symlink_table(facets([other])) is None
    assert symlink_table({"symlinks": "bad"}) is None
    for identifiers in (5, "TABLE", {"namespace": "hive://m", "name": "db.a"}, None):
        assert symlink_table({"symlinks": {"identifiers": identifiers}}) is None
