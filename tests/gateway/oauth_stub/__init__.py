"""Test support for auth: a local stub OAuth server (kakao, google and naver shapes) and the
browser-like dev-login flow."""
