"""A day of the raw zone through PySpark local[*], as the seed or as pinpipe's contract.

    spark_batch.py seed|contract RAW_DAY_DIR OUT_DIR

seed: the seed's batch cleaning as written (spark_common.seed_clean).
contract: pinpipe's daily job (docs/contracts.md): validate, clean with every
rule, keep the newest version of each unique_id, write Parquet in the
curated zone's column order and types.

Prints PEERS_RESULT with the rows, the seconds from the session being up to
the Parquet written (JVM start excluded, and reported apart), and peak memory.
"""
import sys
import time

from pyspark.sql import functions as F

from spark_common import PLACEHOLDERS, SEED_SCHEMA, peak_memory, report, seed_clean, session

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SPACE = r"(?U)^\s+|\s+$"  # Unicode white space, as Go's strings.TrimSpace


def trim(c):
    return F.regexp_replace(c, SPACE, "")


def text(name, placeholders=()):
    t = trim(F.col(name))
    bad = (t == "")
    if placeholders:
        bad = bad | t.isin(list(placeholders))
    return F.when(bad, None).otherwise(t)


def followers(c):
    t = trim(c)
    ok = t.rlike(r"^[0-9]+(\.[0-9]+[kKmMbB]|[kKmMbB])?$")
    number = F.regexp_extract(t, r"^([0-9]+(\.[0-9]+)?)", 1)
    suffix = F.lower(F.regexp_extract(t, r"([kKmMbB])$", 1))
    scale = (F.when(suffix == "k", F.lit(1000)).when(suffix == "m", F.lit(1000000))
             .when(suffix == "b", F.lit(1000000000)).otherwise(F.lit(1)))
    # Spark's round is half up, the contract's rule for a fraction finer than one follower.
    value = F.round(number.try_cast("decimal(38,9)") * scale.cast("decimal(10,0)"), 0).try_cast("bigint")
    return F.when(ok, value)


def save_location(c):
    t = text(c)
    rest = trim(F.substring(t, len("Local save in") + 1, 1 << 30))
    return F.when(t.rlike(r"^Local save in([ \t]|$)"), F.when(rest != "", rest)).otherwise(t)


def lineage(raw):
    """The raw zone's lineage columns as the landing names them (kafka_*),
    also from objects landed before the rename (partition, offset, timestamp)."""
    for new, old in (("kafka_partition", "partition"), ("kafka_offset", "offset"), ("kafka_timestamp", "timestamp")):
        if new not in raw.columns and old in raw.columns:
            raw = raw.withColumnRenamed(old, new)
    return raw


def contract(raw):
    raw = lineage(raw)
    pins = raw.select(F.from_json("value", SEED_SCHEMA).alias("p"), "kafka_partition", "kafka_offset", "kafka_timestamp")
    valid = (F.col("p").isNotNull() & F.col("p.index").isNotNull() & (F.col("p.index") >= 0)
             & F.col("p.unique_id").rlike(UUID) & (trim(F.col("p.category")) != "")
             & (F.col("p.downloaded").isNull() | F.col("p.downloaded").isin(0, 1)))
    pins = pins.where(valid).select("p.*", "kafka_partition", "kafka_offset", "kafka_timestamp")
    tag_list = text("tag_list", PLACEHOLDERS["tag_list"])
    cleaned = pins.select(
        F.col("index").alias("id_index"),
        text("title", PLACEHOLDERS["title"]).alias("title"),
        trim(F.col("category")).alias("category"),
        F.lower("unique_id").alias("unique_id"),
        text("description", PLACEHOLDERS["description"]).alias("description"),
        text("poster_name", PLACEHOLDERS["poster_name"]).alias("poster_name"),
        followers(F.col("follower_count")).alias("follower_count"),
        tag_list.alias("tag_list"),
        F.coalesce(F.filter(F.transform(F.split(tag_list, ","), trim), lambda t: t != ""),
                   F.array().cast("array<string>")).alias("tags"),
        text("is_image_or_video").alias("is_image_or_video"),
        text("image_src", PLACEHOLDERS["image_src"]).alias("image_src"),
        F.col("downloaded").cast("int").alias("downloaded"),
        save_location("save_location").alias("save_location"),
        # An instant, as pinpipe's curated zone keeps it (isAdjustedToUTC=true).
        F.col("kafka_timestamp").alias("ingested_at"),
        F.col("kafka_partition").cast("int").alias("kafka_partition"),
        F.col("kafka_offset").alias("kafka_offset"),
    )
    cols = cleaned.columns
    # The version order: in one partition the higher offset wins; across
    # partitions the later timestamp, then the higher partition.
    keyed = cleaned.repartition("unique_id")
    per_partition = (keyed.groupBy("unique_id", "kafka_partition")
                     .agg(F.max_by(F.struct(*cols), F.col("kafka_offset")).alias("r")).select("r.*"))
    newest = (per_partition.groupBy("unique_id")
              .agg(F.max_by(F.struct(*cols), F.struct("ingested_at", "kafka_partition")).alias("r")).select("r.*"))
    return newest.select(*cols)


def main():
    mode, raw_dir, out_dir = sys.argv[1:4]
    spark, jvm_start = session("peers-batch-" + mode)
    start = time.monotonic()
    raw = spark.read.parquet(raw_dir)
    if mode == "seed":
        out = seed_clean(raw.select(F.from_json("value", SEED_SCHEMA).alias("p")).select("p.*"))
    else:
        out = contract(raw)
    out.write.mode("overwrite").parquet(out_dir)
    seconds = time.monotonic() - start
    jvm_peak, py_peak = peak_memory(spark)
    rows_in = spark.read.parquet(raw_dir).count()
    rows_out = spark.read.parquet(out_dir).count()
    report(mode=mode, rows_in=rows_in, rows_out=rows_out, seconds=seconds, jvm_start=jvm_start,
           jvm_peak=jvm_peak, py_peak=py_peak)
    spark.stop()


if __name__ == "__main__":
    main()
