"""Statement lines matched against internal records: DuckDB (engine.py) by default, Spark
(spark.py) for days that outgrow one machine, one set of rules (rules.py) for both."""
