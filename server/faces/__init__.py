"""Face verification on the server: a capture from a terminal's face camera against a
purchaser's enrolled image.

``checks`` refuses a capture by name before any matching (not live, no liveness, no face,
several faces, low quality); ``images`` decodes and bounds caller images; ``matcher`` is the
``FaceMatcher`` interface and ``dlib_backend`` its default backend (dlib's ResNet encoder
with the models of ``face_recognition_models``); ``settings`` holds the per-deployment
threshold and limits; ``verify`` ties them into one decision kept for audit. docs/faces.md
gives the threshold and the distances measured on the test photographs.
"""
