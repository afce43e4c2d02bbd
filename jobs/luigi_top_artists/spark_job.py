"""Streams per artist over many days, on Spark: the Luigi example's ``top_artists_spark.py``.

Run by ``spark-submit`` (see ``AggregateArtistsSpark``) with two arguments: the
comma-joined input paths and the output path. Writes ``artist<TAB>count`` part files.
The Luigi example's loop ``streams.union(...)`` dropped its result, so only the first day was
counted; reading every path in one ``csv()`` call counts them all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession


def main(argv: Sequence[str]) -> int:
    input_paths = argv[1].split(",")
    output_path = argv[2]

    spark = SparkSession.builder.getOrCreate()
    try:
        streams = spark.read.option("sep", "\t").csv(input_paths)
        # The second field is the artist.
        counts = streams.groupBy(streams.columns[1]).count()
        counts.write.option("sep", "\t").csv(output_path)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
