"""The bundle's logic: builds the welcome screen's lines from its text and style."""


def render(screen: dict, style: dict) -> list[str]:
    title = screen["title"]
    line = style["border"] * (len(title) + 4)
    return [line, f"  {title}", line, screen["message"]]
