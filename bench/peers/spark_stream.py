"""The seed's Spark Structured Streaming job, upserting into Postgres.

    spark_stream.py TOPIC

Kafka source, the seed's cleaning (spark_common.seed_clean), foreachBatch into
Postgres. The seed appended each micro-batch; this writes it to a staging
table and upserts from there (INSERT … ON CONFLICT), so a re-sent pin stays
one row, as pinpipe's stream lane keeps it. The Kafka timestamp and offset
are kept as ingested_at and kafka_offset, for the freshness measure and the
version order. Settings: PEERS_KAFKA_BROKERS, PEERS_JDBC_URL.
"""
import os
import sys
import time

from pyspark.sql import functions as F

from spark_common import SEED_SCHEMA, seed_clean, session

COLUMNS = ["id_index", "title", "category", "unique_id", "description", "poster_name", "follower_count",
           "tag_list", "is_image_or_video", "image_src", "downloaded", "save_location", "ingested_at",
           "kafka_offset"]
UPSERT = ("INSERT INTO seed.pins ({cols}) SELECT DISTINCT ON (unique_id) {cols} FROM seed.pins_stage "
          "ORDER BY unique_id, kafka_offset DESC ON CONFLICT (unique_id) DO UPDATE SET {sets}").format(
    cols=", ".join(COLUMNS), sets=", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "unique_id"))


def main():
    topic = sys.argv[1]
    url = os.environ["PEERS_JDBC_URL"]
    spark, _ = session("peers-stream", spark_driver_extraJavaOptions="-Duser.timezone=UTC")
    jvm = spark.sparkContext._jvm

    def upsert(batch, epoch_id):
        batch.write.jdbc(url, "seed.pins_stage", mode="overwrite",
                         properties={"driver": "org.postgresql.Driver", "truncate": "true"})
        conn = jvm.java.sql.DriverManager.getConnection(url)
        try:
            conn.createStatement().executeUpdate(UPSERT)
        finally:
            conn.close()

    source = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", os.environ["PEERS_KAFKA_BROKERS"])
              .option("subscribe", topic)
              .option("startingOffsets", "latest")
              .load())
    pins = source.select(F.from_json(F.col("value").cast("string"), SEED_SCHEMA).alias("p"),
                         F.col("timestamp").alias("ingested_at"), F.col("offset").alias("kafka_offset"))
    cleaned = seed_clean(pins.select("p.*", "ingested_at", "kafka_offset"), keep=("ingested_at", "kafka_offset"))
    query = cleaned.writeStream.foreachBatch(upsert).start()
    while query.lastProgress is None and query.isActive:
        time.sleep(0.2)
    print("PEERS_READY", flush=True)
    query.awaitTermination()


if __name__ == "__main__":
    main()
