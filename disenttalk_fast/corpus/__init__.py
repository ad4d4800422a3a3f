"""The synthetic bilingual corpus: espeak-ng speech (English, Mandarin) with phoneme-driven lip
motion, independent blinks and slow global drift, projected into the built-in face's
expression basis and written in the clip dataset format (`disenttalk synth-corpus`)."""
