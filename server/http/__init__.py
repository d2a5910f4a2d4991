"""HTTP-level concerns shared by every route: headers, media types, CORS, compression."""
