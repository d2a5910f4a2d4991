-- Courses, lessons, enrollments with progress, completed lessons and reviews.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Trigram matches below this word similarity are not matches: low enough that one typo in
-- a short word still finds it ("pyhton" -> "python"), high enough to keep noise out.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET pg_trgm.word_similarity_threshold = 0.3',
                   current_database());
END
$$;
SET pg_trgm.word_similarity_threshold = 0.3;

-- array_to_string is only STABLE (element output functions could depend on settings);
-- for text[] it is immutable, which generated columns and index expressions need.
CREATE FUNCTION course_tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN array_to_string(tags, ' ');

CREATE TABLE courses (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug                text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    title               text NOT NULL CHECK (char_length(title) BETWEEN 3 AND 200),
    description         text NOT NULL CHECK (char_length(description) BETWEEN 10 AND 2000),
    category            text NOT NULL CHECK (char_length(category) BETWEEN 1 AND 100),
    level               text NOT NULL CHECK (level IN ('beginner', 'intermediate', 'advanced')),
    price               numeric(10, 2) NOT NULL DEFAULT 0 CHECK (price >= 0),
    duration            integer NOT NULL CHECK (duration >= 1),
    tags                text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 10),
    prerequisites       text[] NOT NULL DEFAULT '{}' CHECK (cardinality(prerequisites) <= 50),
    learning_objectives text[] NOT NULL
                        CHECK (cardinality(learning_objectives) BETWEEN 1 AND 50),
    instructor_id       uuid NOT NULL REFERENCES users (id),
    status              text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'published', 'archived')),
    published_at        timestamptz CHECK (status <> 'published' OR published_at IS NOT NULL),
    average_rating      numeric(3, 2) NOT NULL DEFAULT 0 CHECK (average_rating BETWEEN 0 AND 5),
    review_count        integer NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    total_enrollments   integer NOT NULL DEFAULT 0 CHECK (total_enrollments >= 0),
    lesson_count        integer NOT NULL DEFAULT 0 CHECK (lesson_count >= 0),
    search              tsvector GENERATED ALWAYS AS (
                            setweight(to_tsvector('english', title), 'A')
                            || setweight(to_tsvector('english', course_tags_text(tags)), 'B')
                            || setweight(to_tsvector('english', description), 'C')
                        ) STORED,
    search_words        text GENERATED ALWAYS AS (
                            lower(title || ' ' || course_tags_text(tags))
                        ) STORED,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX courses_search_idx ON courses USING gin (search);
CREATE INDEX courses_search_words_idx ON courses USING gin (search_words gin_trgm_ops);
CREATE INDEX courses_tags_idx ON courses USING gin (tags);
CREATE INDEX courses_newest_idx ON courses (status, published_at DESC, id);
CREATE INDEX courses_rating_idx ON courses (status, average_rating DESC, total_enrollments DESC);
CREATE INDEX courses_popular_idx ON courses (status, total_enrollments DESC, id);
CREATE INDEX courses_price_idx ON courses (status, price, id);
CREATE INDEX courses_category_idx ON courses (category, status);
CREATE INDEX courses_level_idx ON courses (level, status);
CREATE INDEX courses_instructor_idx ON courses (instructor_id, created_at DESC);

CREATE TABLE lessons (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id        uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    title            text NOT NULL CHECK (char_length(title) BETWEEN 3 AND 200),
    content          text NOT NULL CHECK (char_length(content) <= 100000),
    duration_minutes integer NOT NULL CHECK (duration_minutes >= 1),
    position         integer NOT NULL CHECK (position >= 1),
    required         boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Checked at the end of each statement, so positions can shift in one UPDATE.
    CONSTRAINT lessons_position_key UNIQUE (course_id, position) DEFERRABLE INITIALLY IMMEDIATE
);

-- Enrollments existed before courses; rows made since are checked, older ones are not.
ALTER TABLE enrollments
    ALTER COLUMN progress TYPE numeric(5, 2),
    ADD CONSTRAINT enrollments_course_fkey FOREIGN KEY (course_id)
        REFERENCES courses (id) ON DELETE CASCADE NOT VALID,
    ADD COLUMN last_activity_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN dropped_at timestamptz,
    ADD COLUMN payment_method text
        CHECK (payment_method IN ('credit_card', 'paypal', 'bank_transfer')),
    ADD COLUMN coupon_code text CHECK (coupon_code ~ '^[A-Za-z0-9]{4,20}$'),
    ADD CONSTRAINT enrollments_completed_check
        CHECK (status <> 'completed' OR (completed_at IS NOT NULL AND progress = 100)),
    ADD CONSTRAINT enrollments_dropped_check
        CHECK (status <> 'dropped' OR dropped_at IS NOT NULL);
CREATE INDEX enrollments_course_idx ON enrollments (course_id, enrolled_at DESC);

CREATE TABLE completed_lessons (
    enrollment_id uuid NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    lesson_id     uuid NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    completed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enrollment_id, lesson_id)
);
CREATE INDEX completed_lessons_lesson_idx ON completed_lessons (lesson_id);

CREATE TABLE reviews (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id  uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating     smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text CHECK (char_length(comment) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (course_id, user_id)
);
CREATE INDEX reviews_course_idx ON reviews (course_id, created_at DESC);

-- An achievement is earned by a rule, at most once per user.
ALTER TABLE achievements ADD COLUMN rule text;
CREATE UNIQUE INDEX achievements_rule_key ON achievements (user_id, rule) WHERE rule IS NOT NULL;
