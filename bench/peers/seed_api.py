"""The seed's ingest API, as the Pinterest-Pipeline project's README describes it.

FastAPI with a pydantic model of the pin, one kafka-python producer, one
uvicorn worker. Two changes make it comparable with pinpipe at equal
durability: the producer waits for acks=all, and the handler answers only
after Kafka acknowledged the record. /pins/ is not the seed's: it is the
best bulk this stack can do (a JSON array validated by pydantic, every
record sent, then every acknowledgement awaited).

Settings come from the environment: PEERS_KAFKA_BROKERS, PEERS_TOPIC,
PEERS_PORT.
"""
import json
import os
from typing import List

import uvicorn
from fastapi import FastAPI
from kafka import KafkaProducer
from pydantic import BaseModel

TOPIC = os.environ["PEERS_TOPIC"]

app = FastAPI()
producer = KafkaProducer(
    bootstrap_servers=os.environ["PEERS_KAFKA_BROKERS"].split(","),
    acks="all",
    value_serializer=lambda value: json.dumps(value).encode("utf-8"),
)


class Data(BaseModel):
    category: str
    index: int
    unique_id: str
    title: str
    description: str
    poster_name: str
    follower_count: str
    tag_list: str
    is_image_or_video: str
    image_src: str
    downloaded: int
    save_location: str


@app.post("/pin/")
def post_pin(item: Data):
    producer.send(TOPIC, value=dict(item)).get(timeout=30)
    return {"accepted": 1}


@app.post("/pins/")
def post_pins(items: List[Data]):
    pending = [producer.send(TOPIC, value=dict(item)) for item in items]
    for record in pending:
        record.get(timeout=30)
    return {"accepted": len(pending)}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PEERS_PORT"]), workers=1,
                log_level="warning", access_log=False)
