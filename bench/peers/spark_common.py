"""What the Spark peers share: the session, and the seed's cleaning."""
import json
import os
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

# The pin as the seed's Spark jobs parse it: every field a string, index and
# downloaded integers.
SEED_SCHEMA = StructType([
    StructField("category", StringType()),
    StructField("index", LongType()),
    StructField("unique_id", StringType()),
    StructField("title", StringType()),
    StructField("description", StringType()),
    StructField("poster_name", StringType()),
    StructField("follower_count", StringType()),
    StructField("tag_list", StringType()),
    StructField("is_image_or_video", StringType()),
    StructField("image_src", StringType()),
    StructField("downloaded", LongType()),
    StructField("save_location", StringType()),
])

# The source app's placeholders, per column.
PLACEHOLDERS = {
    "title": ["No Title Data Available"],
    "description": ["No description available Story format", "No description available"],
    "poster_name": ["User Info Error"],
    "follower_count": ["User Info Error"],
    "tag_list": ["N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"],
    "image_src": ["Image src error."],
}


def session(name, **conf):
    """Returns a local[*] session and the seconds it took to start (JVM start)."""
    start = time.monotonic()
    b = (SparkSession.builder.master("local[*]").appName(name)
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.sql.session.timeZone", "UTC")
         # The seed ran on Spark 3, whose casts gave NULL (not an error) on a bad value.
         .config("spark.sql.ansi.enabled", "false")
         .config("spark.driver.memory", os.environ.get("PEERS_SPARK_MEMORY", "4g"))
         .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"))
    jars = os.environ.get("PEERS_JARS", "")
    if jars:
        b = b.config("spark.jars", jars).config("spark.driver.extraClassPath", jars.replace(",", ":"))
    for k, v in conf.items():
        b = b.config(k.replace("_", "."), v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark, time.monotonic() - start


def seed_clean(pins, keep=()):
    """The seed's cleaning as written: placeholders to null, follower counts
    with k and M spelled out and cast, the save_location prefix cut, index
    renamed, casts. No validation, no trimming, no dedupe. The columns in
    keep are passed through after the pin's."""
    df = pins
    for c, values in PLACEHOLDERS.items():
        df = df.withColumn(c, F.when(F.col(c).isin(values), None).otherwise(F.col(c)))
    df = (df.withColumn("follower_count", F.regexp_replace("follower_count", "k", "000"))
          .withColumn("follower_count", F.regexp_replace("follower_count", "M", "000000"))
          .withColumn("follower_count", F.col("follower_count").cast("int"))
          .withColumn("save_location", F.regexp_replace("save_location", "Local save in ", ""))
          .withColumn("downloaded", F.col("downloaded").cast("int"))
          .withColumnRenamed("index", "id_index"))
    return df.select("id_index", "title", "category", "unique_id", "description", "poster_name",
                     "follower_count", "tag_list", "is_image_or_video", "image_src", "downloaded",
                     "save_location", *keep)


def peak_memory(spark):
    """Returns the peak resident bytes of the JVM and of this Python driver."""
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    return vm_hwm(jvm_pid), vm_hwm(os.getpid())


def vm_hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def report(**values):
    """Prints the job's result as one JSON line that bench/peers reads."""
    print("PEERS_RESULT " + json.dumps(values), flush=True)
