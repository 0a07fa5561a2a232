"""The reader pages that `digest serve` answers: sign-up, confirmation, preferences,
unsubscribe and ratings (``digest.web.app.create_app``)."""
