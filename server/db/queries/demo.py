"""Statements that make a realistic demo data set in bulk, each for one batch.

Every row of one run carries the run's tag (in emails and slugs), so runs add to each other
and a batch finds what its run made before. Text is drawn from small vocabularies by
`random()`, after `setseed` makes a run repeatable.
"""

from __future__ import annotations

from server.db.statement import Statement

SEED = Statement("demo.seed", "SELECT setseed(%(seed)s)")

USERS = Statement(
    "demo.users",
    "INSERT INTO users (email, password_hash, first_name, last_name, role, is_email_verified)"
    " SELECT format('%%s-%%s-%%s@demo.example', %(role)s::text, %(run)s::text, g), %(hash)s,"
    " (ARRAY['Ada','Alan','Grace','Edsger','Barbara','Donald','Margaret','Linus','Frances',"
    "   'John','Katherine','Tim','Radia','Ken','Dennis','Hedy'])[1 + floor(random() * 16)::int],"
    " (ARRAY['Lovelace','Turing','Hopper','Dijkstra','Liskov','Knuth','Hamilton','Torvalds',"
    "   'Allen','Backus','Johnson','Lee','Perlman','Thompson','Ritchie','Lamarr'])"
    "   [1 + floor(random() * 16)::int],"
    " %(role)s::text, true FROM generate_series(%(first)s::int, %(last)s::int) AS g",
)

_SUBJECTS = (
    "ARRAY['Python','JavaScript','Statistics','Machine Learning','Data Analysis','Calculus',"
    "'Linear Algebra','Web Design','Photography','Spanish','French','Turkish','Marketing',"
    "'Accounting','Physics','Chemistry','Biology','History','Music Theory','Guitar',"
    "'Drawing','Public Speaking','Writing','Cloud Computing','Databases','Kotlin','Rust',"
    "'Go','Cybersecurity','Project Management','Economics','Philosophy']"
)
_FORMATS = (
    "ARRAY['Introduction to %%s','%%s for Beginners','Practical %%s','Advanced %%s',"
    "'%%s in 30 Days','Mastering %%s','%%s Fundamentals','Applied %%s','%%s Bootcamp',"
    "'The Complete %%s Course']"
)

COURSES = Statement(
    "demo.courses",
    "WITH teachers AS (SELECT array_agg(id) AS ids FROM users"
    "   WHERE email LIKE format('teacher-%%s-%%%%', %(run)s::text)),"
    " picks AS (SELECT g, 1 + floor(random() * 32)::int AS s, 1 + floor(random() * 10)::int"
    "   AS f, floor(random() * 3)::int AS lv"
    "   FROM generate_series(%(first)s::int, %(last)s::int) AS g)"
    " INSERT INTO courses (slug, title, description, category, level, price, duration, tags,"
    "   prerequisites, learning_objectives, instructor_id)"
    " SELECT format('demo-%%s-%%s', %(run)s::text, g),"
    " format((" + _FORMATS + ")[f], (" + _SUBJECTS + ")[s]),"
    " format('A course on %%s: short lessons, worked examples and exercises,"
    " from the first steps to confident use.', (" + _SUBJECTS + ")[s]),"
    " (ARRAY['programming','data','design','languages','business','science','humanities',"
    "   'music','art','communication','technology','mathematics'])[1 + s %% 12],"
    " (ARRAY['beginner','intermediate','advanced'])[1 + lv],"
    " round((random() * 200)::numeric, 2) * (random() > 0.2)::int, 60 + floor(random() * 1200),"
    " ARRAY[lower(replace((" + _SUBJECTS + ")[s], ' ', '-')),"
    "   (ARRAY['beginner','career','project','theory','practice','exam','hobby'])"
    "   [1 + floor(random() * 7)::int]],"
    " ARRAY[]::text[], ARRAY[format('Use %%s with confidence', (" + _SUBJECTS + ")[s])],"
    " teachers.ids[1 + floor(random() * cardinality(teachers.ids))::int]"
    " FROM picks, teachers",
)

LESSONS = Statement(
    "demo.lessons",
    "WITH c AS (SELECT id FROM courses WHERE slug LIKE format('demo-%%s-%%%%', %(run)s::text)"
    "   AND lesson_count = 0 ORDER BY slug LIMIT %(batch)s),"
    " l AS (INSERT INTO lessons (course_id, title, content, duration_minutes, position,"
    "   required)"
    "   SELECT c.id, format('Part %%s: %%s', p, (ARRAY['Overview','Core ideas','Worked example',"
    "     'Exercises','Common mistakes','Project','Review','Going further'])[1 + p %% 8]),"
    "   'Read the notes, watch the example, then try the exercise at the end.',"
    "   5 + floor(random() * 40)::int, p, p %% 5 <> 0"
    "   FROM c CROSS JOIN generate_series(1, %(per_course)s::int) AS p RETURNING course_id)"
    " UPDATE courses SET lesson_count = n.count FROM (SELECT course_id, count(*) FROM l"
    "   GROUP BY course_id) n WHERE courses.id = n.course_id",
)

PUBLISH = Statement(
    "demo.publish",
    "UPDATE courses SET status = 'published',"
    " published_at = now() - random() * interval '365 days'"
    " WHERE slug LIKE format('demo-%%s-%%%%', %(run)s::text) AND status = 'draft'"
    " AND lesson_count > 0 AND random() < %(share)s",
)

ENROLLMENTS = Statement(
    "demo.enrollments",
    "WITH s AS (SELECT id FROM users WHERE email LIKE format('student-%%s-%%%%', %(run)s::text)"
    "   ORDER BY email OFFSET %(offset)s LIMIT %(batch)s),"
    # Materialized: inlined, the aggregate over every published course ran once per student.
    " c AS MATERIALIZED (SELECT array_agg(id) AS ids FROM courses"
    "   WHERE slug LIKE format('demo-%%s-%%%%', %(run)s::text) AND status = 'published'),"
    " e AS (INSERT INTO enrollments (user_id, course_id, enrolled_at, last_activity_at)"
    "   SELECT s.id, c.ids[1 + floor(random() * cardinality(c.ids))::int],"
    "   now() - random() * interval '90 days', now() - random() * interval '10 days'"
    "   FROM s, c, generate_series(1, %(per_student)s::int) WHERE c.ids IS NOT NULL"
    "   ON CONFLICT (user_id, course_id) DO NOTHING RETURNING id, course_id),"
    " done AS (INSERT INTO completed_lessons (enrollment_id, lesson_id)"
    "   SELECT e.id, l.id FROM e JOIN lessons l ON l.course_id = e.course_id"
    "   WHERE random() < 0.5 RETURNING enrollment_id)"
    " UPDATE courses SET total_enrollments = total_enrollments + n.count"
    " FROM (SELECT course_id, count(*) FROM e GROUP BY course_id) n"
    " WHERE courses.id = n.course_id",
)

PROGRESS = Statement(
    "demo.progress",
    "UPDATE enrollments e SET progress = p.value,"
    " status = CASE WHEN p.value >= 100 THEN 'completed' ELSE 'active' END,"
    " completed_at = CASE WHEN p.value >= 100 THEN e.last_activity_at END"
    " FROM (SELECT e.id, CASE WHEN count(*) FILTER (WHERE l.required) = 0 THEN 100"
    "     ELSE round(count(cl.lesson_id) FILTER (WHERE l.required) * 100.0"
    "       / count(*) FILTER (WHERE l.required), 2) END AS value"
    "   FROM enrollments e JOIN users u ON u.id = e.user_id"
    "   JOIN lessons l ON l.course_id = e.course_id"
    "   LEFT JOIN completed_lessons cl ON cl.enrollment_id = e.id AND cl.lesson_id = l.id"
    "   WHERE u.email LIKE format('student-%%s-%%%%', %(run)s::text) GROUP BY e.id) p"
    " WHERE e.id = p.id",
)

REVIEWS = Statement(
    "demo.reviews",
    "WITH r AS (INSERT INTO reviews (course_id, user_id, rating, comment)"
    "   SELECT e.course_id, e.user_id, 1 + floor(random() * 5)::int,"
    "   (ARRAY['Clear and practical.','Too fast for me.','Great exercises!',"
    "     'Exactly what I needed.','Good, but the project was hard.',NULL])"
    "   [1 + floor(random() * 6)::int]"
    "   FROM enrollments e JOIN users u ON u.id = e.user_id"
    "   WHERE u.email LIKE format('student-%%s-%%%%', %(run)s::text) AND random() < %(share)s"
    "   ON CONFLICT (course_id, user_id) DO NOTHING RETURNING course_id, rating)"
    # A run's courses have no review but this run's, and the statement cannot see its own
    # inserts in `reviews`: the counts come from what it inserted.
    " UPDATE courses c SET review_count = s.n, average_rating = s.average"
    " FROM (SELECT course_id, count(*) AS n, round(avg(rating), 2) AS average FROM r"
    "   GROUP BY course_id) s"
    " WHERE c.id = s.course_id",
)

# One published quiz of five auto-graded single-choice questions per course of the batch.
ASSESSMENTS = Statement(
    "demo.assessments",
    "WITH c AS (SELECT id FROM courses WHERE slug LIKE format('demo-%%s-%%%%', %(run)s::text)"
    "   AND NOT EXISTS (SELECT 1 FROM assessments a WHERE a.course_id = courses.id)"
    "   ORDER BY slug LIMIT %(batch)s),"
    " a AS (INSERT INTO assessments (course_id, title, kind, max_attempts, scoring_policy,"
    "   passing_percent, published, max_score)"
    "   SELECT id, 'Check your understanding', 'quiz', 2,"
    "   (ARRAY['highest','latest','average','first'])[1 + floor(random() * 4)::int], 60,"
    "   true, 10 FROM c RETURNING id),"
    " q AS (INSERT INTO questions (assessment_id, position, type, prompt, points, options)"
    "   SELECT a.id, p, 'single_choice', format('Question %%s', p), 2,"
    "   ARRAY['first', 'second', 'third', 'fourth']"
    "   FROM a CROSS JOIN generate_series(1, 5) AS p RETURNING id)"
    " INSERT INTO answer_keys (question_id, key)"
    " SELECT id, jsonb_build_object('correct', floor(random() * 4)::int) FROM q",
)

# An attempt and its graded submission for a share of the run's enrollments.
SUBMISSIONS = Statement(
    "demo.submissions",
    "WITH e AS (SELECT e.id AS enrollment_id, e.user_id, a.id AS assessment_id"
    "   FROM enrollments e JOIN users u ON u.id = e.user_id"
    "   JOIN assessments a ON a.course_id = e.course_id"
    "   WHERE u.email LIKE format('student-%%s-%%%%', %(run)s::text) AND random() < %(share)s),"
    " t AS (INSERT INTO attempts (assessment_id, enrollment_id, user_id, number, submitted_at)"
    "   SELECT assessment_id, enrollment_id, user_id, 1, now() - random() * interval '20 days'"
    "   FROM e RETURNING id, assessment_id, enrollment_id, user_id, submitted_at)"
    " INSERT INTO submissions (attempt_id, assessment_id, enrollment_id, user_id,"
    "   attempt_number, submitted_at, max_score, raw_score, score, status, graded_at)"
    " SELECT t.id, t.assessment_id, t.enrollment_id, t.user_id, 1, t.submitted_at, 10, s.score,"
    "   s.score, 'graded', t.submitted_at"
    " FROM t, LATERAL (SELECT 2 * floor(random() * 6)::int AS score, t.id AS attempt) s",
)
