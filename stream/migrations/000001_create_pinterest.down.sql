DROP TABLE IF EXISTS pinterest.rejected;
DROP TABLE IF EXISTS pinterest.pins_by_minute;
DROP TABLE IF EXISTS pinterest.pins_by_category;
DROP TABLE IF EXISTS pinterest.pins;
DROP SCHEMA IF EXISTS pinterest;
