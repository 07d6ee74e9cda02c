-- Each tick the inventory and the window sums read every chunk of every SLO's
-- window, about 700 rows an SLO for 28 days, and of each row only its counts and
-- flags. With those in the key's index, a chunk is read from the index alone once
-- its page is all-visible (autovacuum sees to that soon after it is written),
-- without a visit to the table: for 1,000 SLOs the two queries took 0.35 s rather
-- than 0.55 s. Chunks are written once an hour, so the wider index costs little.
ALTER TABLE count_chunks DROP CONSTRAINT count_chunks_pkey;
ALTER TABLE count_chunks
    ADD PRIMARY KEY (indicator_key, datasource, chunk_seconds, chunk_start)
    INCLUDE (good, total, absent, revisited);
