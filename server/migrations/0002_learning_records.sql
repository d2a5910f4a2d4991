-- What the user's statistics, progress and achievements are computed from.
-- course_id gains its foreign key when the courses table lands.
CREATE TABLE enrollments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id    uuid NOT NULL,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'dropped')),
    progress     real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    UNIQUE (user_id, course_id)
);

CREATE TABLE achievements (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text NOT NULL,
    description text,
    badge       text,
    earned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX achievements_user_idx ON achievements (user_id, earned_at DESC);
