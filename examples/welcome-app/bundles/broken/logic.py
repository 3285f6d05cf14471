"""A broken release: its logic fails when the screen renders."""


def render(screen: dict, style: dict) -> list[str]:
    return [screen["headline"]]  # there is no "headline": this release crashes the app at start
