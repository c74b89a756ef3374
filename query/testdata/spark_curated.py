"""Reads copies of the curated zone with PySpark as any Spark job would: a
plain spark.read.parquet of the prefix, with no knowledge of pinpipe's
commit markers. For each directory given, prints one JSON line: the rows,
each pin's ingested_at as microseconds since the epoch (the instant), and
the rows per category. The session's time zone is not UTC on purpose: an
instant reads the same in any zone, a wall time would not."""
import json
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = (SparkSession.builder.master("local[2]").appName("pinpipe-lake-interop")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.sql.session.timeZone", "America/Los_Angeles")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
for d in sys.argv[1:]:
    df = spark.read.parquet(d)
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    rows = df.select("unique_id", F.unix_micros("ingested_at").alias("us"), "category", "dt").collect()
    cats = {}
    for r in rows:
        cats[r["category"]] = cats.get(r["category"], 0) + 1
    print(json.dumps({
        "dir": d,
        "rows": len(rows),
        "ingested_at_type": types.get("ingested_at"),
        "ingested_at": {r["unique_id"]: r["us"] for r in rows},
        "days": sorted({str(r["dt"]) for r in rows}),
        "categories": cats,
    }), flush=True)
spark.stop()
