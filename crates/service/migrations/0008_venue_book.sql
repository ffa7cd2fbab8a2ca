-- Version 8: the stored cross-venue book (src/venues.rs), one row: the book's document as
-- canonical JSON, replaced whole by each PUT /api/netting/book and netted on every read.
CREATE TABLE IF NOT EXISTS venue_book (
    id BIGINT PRIMARY KEY,
    document TEXT NOT NULL
);
