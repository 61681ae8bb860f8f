"""OAuth 2.0 sign-in: the real providers (kakao, google, naver) and the built-in dev provider."""
