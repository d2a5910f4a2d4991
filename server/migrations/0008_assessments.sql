-- Assessments with typed questions (answer keys apart), attempts, submissions graded per
-- question, the grade history, and lessons tied to an assessment.
CREATE TABLE assessments (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id              uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    lesson_id              uuid REFERENCES lessons (id) ON DELETE SET NULL,
    title                  text NOT NULL CHECK (char_length(title) BETWEEN 3 AND 200),
    description            text CHECK (char_length(description) <= 5000),
    kind                   text NOT NULL CHECK (kind IN ('quiz', 'assignment')),
    max_attempts           integer CHECK (max_attempts >= 1),
    time_limit_minutes     integer CHECK (time_limit_minutes BETWEEN 1 AND 10080),
    due_at                 timestamptz,
    late_deduction_percent numeric(5, 2) CHECK (late_deduction_percent BETWEEN 0 AND 100),
    late_minimum_percent   numeric(5, 2) CHECK (late_minimum_percent BETWEEN 0 AND 100),
    scoring_policy         text NOT NULL DEFAULT 'highest'
                           CHECK (scoring_policy IN ('highest', 'latest', 'average', 'first')),
    passing_percent        numeric(5, 2) NOT NULL DEFAULT 60
                           CHECK (passing_percent BETWEEN 0 AND 100),
    published              boolean NOT NULL DEFAULT false,
    max_score              numeric(8, 2) NOT NULL DEFAULT 0 CHECK (max_score >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((late_deduction_percent IS NULL) = (late_minimum_percent IS NULL))
);
CREATE INDEX assessments_course_idx ON assessments (course_id, created_at);
CREATE UNIQUE INDEX assessments_lesson_key ON assessments (lesson_id) WHERE lesson_id IS NOT NULL;

CREATE TABLE questions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    assessment_id uuid NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    position      integer NOT NULL CHECK (position >= 1),
    type          text NOT NULL CHECK (type IN ('single_choice', 'multiple_choice', 'true_false',
                                                'short_answer', 'numeric', 'essay')),
    prompt        text NOT NULL CHECK (char_length(prompt) BETWEEN 1 AND 5000),
    points        numeric(6, 2) NOT NULL CHECK (points > 0),
    options       text[],
    CHECK ((type IN ('single_choice', 'multiple_choice')) = (options IS NOT NULL)),
    UNIQUE (assessment_id, position)
);

-- What students never see: the key of each auto-graded question, as its type needs it
-- (an index, a list of indexes, a boolean, accepted strings, or a value and a tolerance).
CREATE TABLE answer_keys (
    question_id uuid PRIMARY KEY REFERENCES questions (id) ON DELETE CASCADE,
    key         jsonb NOT NULL
);

CREATE TABLE attempts (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    assessment_id uuid NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    enrollment_id uuid NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    number        integer NOT NULL CHECK (number >= 1),
    started_at    timestamptz NOT NULL DEFAULT now(),
    deadline      timestamptz,
    submitted_at  timestamptz,
    UNIQUE (assessment_id, user_id, number)
);
CREATE INDEX attempts_open_idx ON attempts (assessment_id, user_id) WHERE submitted_at IS NULL;

CREATE TABLE submissions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    attempt_id      uuid NOT NULL UNIQUE REFERENCES attempts (id) ON DELETE CASCADE,
    assessment_id   uuid NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    enrollment_id   uuid NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attempt_number  integer NOT NULL CHECK (attempt_number >= 1),
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    late            boolean NOT NULL DEFAULT false,
    seconds_late    integer NOT NULL DEFAULT 0 CHECK (seconds_late >= 0),
    max_score       numeric(8, 2) NOT NULL CHECK (max_score >= 0),
    raw_score       numeric(8, 2) NOT NULL CHECK (raw_score BETWEEN 0 AND max_score),
    points_deducted numeric(8, 2) NOT NULL DEFAULT 0 CHECK (points_deducted >= 0),
    score           numeric(8, 2) NOT NULL CHECK (score BETWEEN 0 AND max_score),
    status          text NOT NULL CHECK (status IN ('graded', 'pending_review')),
    feedback        text CHECK (char_length(feedback) <= 5000),
    graded_at       timestamptz,
    UNIQUE (assessment_id, user_id, attempt_number)
);
CREATE INDEX submissions_student_idx ON submissions (assessment_id, user_id, submitted_at);
CREATE INDEX submissions_enrollment_idx ON submissions (enrollment_id);

CREATE TABLE submission_answers (
    submission_id uuid NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    question_id   uuid NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    value         jsonb,
    points        numeric(6, 2) NOT NULL CHECK (points > 0),
    score         numeric(6, 2) CHECK (score BETWEEN 0 AND points),
    PRIMARY KEY (submission_id, question_id)
);

CREATE TABLE grade_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id uuid NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    changed_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    from_score    numeric(8, 2),
    to_score      numeric(8, 2) NOT NULL,
    reason        text CHECK (char_length(reason) <= 2000)
);
CREATE INDEX grade_history_submission_idx ON grade_history (submission_id, changed_at);
