"""Spark SQL over the curated and raw zones' Parquet, the dashboard's example queries.

    spark_query.py LAKE_DIR QUERIES_JSON RUNS

QUERIES_JSON is a list of [name, sql]. Each query runs once unmeasured, then
RUNS times, each to its last row (collect). Prints PEERS_RESULT with the
seconds of each measured run; the JVM start is not part of any.
"""
import json
import sys
import time

from spark_common import peak_memory, report, session


def main():
    lake, queries_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(queries_path) as f:
        queries = json.load(f)
    spark, jvm_start = session("peers-query")
    for view, zone in (("pins", "curated"), ("pins_raw", "raw")):
        (spark.read.option("basePath", f"{lake}/{zone}").parquet(f"{lake}/{zone}/dt=*")
         .createOrReplaceTempView(view))
    times = {}
    for name, sql in queries:
        spark.sql(sql).collect()
        times[name] = []
        for _ in range(runs):
            start = time.monotonic()
            spark.sql(sql).collect()
            times[name].append(time.monotonic() - start)
    jvm_peak, py_peak = peak_memory(spark)
    report(queries=times, jvm_start=jvm_start, jvm_peak=jvm_peak, py_peak=py_peak)
    spark.stop()


if __name__ == "__main__":
    main()
