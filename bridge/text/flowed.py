"""format=flowed (RFC 3676) decoding: join soft-broken lines back into paragraphs."""

from __future__ import annotations


def _split_quote(line: str) -> tuple[int, str]:
    depth = len(line) - len(line.lstrip(">"))
    content = line[depth:]
    if content.startswith(" "):  # space-stuffing (RFC 3676 §4.4)
        content = content[1:]
    return depth, content


def unflow(text: str, *, delsp: bool = False) -> str:
    """Unwrap flowed lines: a line ending in a space continues on the next line of the same
    quote depth. The signature separator "-- " is never flowed. With DelSp=yes the trailing
    space is deleted when joining. Quote depth is kept as a "> " prefix.
    """
    out: list[str] = []
    para: list[str] = []
    para_depth = 0

    def flush() -> None:
        if para or out is not None:
            prefix = "> " * para_depth if para_depth else ""
            out.append(prefix + "".join(para))
        para.clear()

    pending = False
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        depth, content = _split_quote(line)
        if pending and depth != para_depth:
            flush()
            pending = False
        if not pending:
            para_depth = depth
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        para.append(content)
        if flowed:
            pending = True
        else:
            flush()
            pending = False
    if pending:
        flush()
    return "\n".join(out)
