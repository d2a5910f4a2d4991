-- The session actors' periodic resync reads users whose tokens_valid_after moved since their
-- watermark; most users never set it (-infinity), so only the others are indexed.
CREATE INDEX users_tokens_valid_after_idx ON users (tokens_valid_after)
    WHERE tokens_valid_after > '-infinity';
