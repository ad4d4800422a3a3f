"""Motion-quality evaluation: metrics on plain arrays (`metrics`), face-space measurements on
the built-in face (`face_measures`), the evaluation runs (`evaluate`) and the Markdown / PNG
report (`report`) behind `disenttalk eval`."""
