"""Renders Markdown to HTML with comrak, the library GitLab's Markdown
pipeline uses (gitlab-glfm-markdown), with the GitLab Flavored Markdown
extensions turned on: tables, strikethrough, autolinks, task lists,
footnotes; code blocks as `<pre lang="...">` and raw HTML kept (GitLab
sanitises it afterwards; RunnerIQ writes only <details>, <summary>, <sub>
and comments).

Usage: python glfm.py IN.md OUT.html
"""

import sys

import comrak


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    ext = comrak.ExtensionOptions()
    for name in ("table", "strikethrough", "autolink", "tasklist", "footnotes"):
        setattr(ext, name, True)
    render = comrak.RenderOptions()
    render.unsafe_ = True
    render.github_pre_lang = True
    with open(src, encoding="utf-8") as f:
        body = comrak.render_markdown(f.read(), extension_options=ext, render_options=render)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(page(body))


def page(body: str) -> str:
    """A page that looks enough like a GitLab issue to judge a chart by."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:1em auto;"
        "padding:0 1em;color:#333}table{border-collapse:collapse;display:block;overflow-x:auto}"
        "td,th{border:1px solid #dcdcde;padding:.3em .6em}pre{background:#fbfafd;padding:.5em;"
        "overflow-x:auto}</style></head><body>" + body + "</body></html>\n"
    )


if __name__ == "__main__":
    main()
