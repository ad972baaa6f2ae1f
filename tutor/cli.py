"""`tutor` — the terminal shell over `Tutor`. Parses flags, calls the API, renders with rich.

Errors the user can fix are caught at this boundary and printed as one line (exit code 1/2);
nothing below this layer prints.
"""
from __future__ import annotations

import itertools
import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .config import FLAT, Settings, load_settings, regroup
from .errors import ConfigError, LLMError, TutorError
from .masking import mask_url, masked_settings, redact
from .text import clip

console = Console()
err = Console(stderr=True)


def _config_epilog() -> str:
    try:
        s = load_settings()
    except Exception as e:  # a bad config must not break --help
        return f"config error: {redact(str(e))}"
    keys = ("corpus_dir", "index_dir", "home", "embedder", "retrieval_mode", "backend", "model", "base_url")
    shown = masked_settings(s)
    return "Effective config (defaults → tutor.toml → TUTOR_* env): " + "; ".join(
        f"{k}={shown[k]}" for k in keys) + ". Full list: `tutor models`."


class _Group(TyperGroup):
    """Reads the settings for `--help`'s epilog when help is shown, not when the CLI is imported."""

    def format_epilog(self, ctx, formatter) -> None:
        self.epilog = _config_epilog()
        super().format_epilog(ctx, formatter)


app = typer.Typer(help="用AI学AI — an AI tutor that answers from your notes and papers, with citations.",
                  cls=_Group, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, rich_markup_mode=None)

_state: dict = {}


@app.callback()
def _root(config: Optional[Path] = typer.Option(None, "--config", help="a tutor.toml to read")):
    _state["config"] = config


def settings(**overrides) -> Settings:
    s = load_settings(_state.get("config"), **overrides)
    _state["settings"] = s  # so an error line can mask this run's secrets
    return s


# C0/C1 control characters (ESC starts terminal escape sequences), DEL, and the bidi controls
# that reorder what is displayed; newline and tab stay
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text from a question, the corpus or a model, made safe to print: control characters (ESC
    sequences that recolour, move the cursor or retitle the terminal) removed."""
    return _CONTROL.sub("", str(text))


def safe(text: str) -> str:
    """`terminal_safe` and escaped for rich markup."""
    return escape(terminal_safe(text))


# what a user can fix: every `TutorError`, plus a bad argument (ValueError) or a missing file
USER_ERRORS = (TutorError, ValueError, FileNotFoundError)


def print_error(e: BaseException) -> None:
    """The one rendering of an error the user can fix: a red "error:" line, secrets masked."""
    msg = redact(str(e), _state.get("settings"))
    err.print(f"[red]error:[/red] {safe(msg)}", markup=True, highlight=False, soft_wrap=True)


@contextmanager
def user_errors():
    """Turn the errors a user can fix into one red line and exit code 1."""
    try:
        yield
    except USER_ERRORS as e:
        print_error(e)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130)


class RateColumn(ProgressColumn):
    """Items per second of the running task ("38.2 chunks/s" while embedding)."""

    def render(self, task) -> Text:
        unit = task.fields.get("unit", "/s")
        return Text(f"{task.speed:.1f} {unit}" if task.speed else "", style="progress.data.speed")


class RichReporter:
    """Index progress → rich progress bars."""

    def __init__(self, progress: Progress):
        self.p, self.task = progress, None

    def status(self, message: str) -> None:
        self.p.console.print(f"[dim]{safe(message)}[/dim]")

    def start(self, label: str, total: int) -> None:
        if self.task is not None:
            self.p.update(self.task, visible=False)
        unit = "chunks/s" if label.startswith("embed") else "files/s"
        self.task = self.p.add_task(label, total=total, unit=unit)

    def advance(self, n: int) -> None:
        self.p.advance(self.task, n)

    def warn(self, message: str) -> None:
        self.p.console.print(f"[yellow]warning:[/yellow] {safe(message)}")


def _make_tutor(s: Settings):
    from .api import Tutor

    return Tutor(s, progress=lambda m: err.print(f"[dim]{safe(m)}[/dim]"))


@app.command("ingest")
def ingest_cmd(
    corpus: Optional[Path] = typer.Argument(None, help="folder of .md/.txt/.pdf (default: corpus/)"),
    index: Optional[Path] = typer.Option(None, "--index", help="index folder (default: index/)"),
    rebuild: bool = typer.Option(False, "--rebuild", help="re-embed everything"),
    chunk_size: Optional[int] = typer.Option(None, "--chunk-size"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
):
    """Chunk, embed and index a corpus folder (incremental: only new/changed files)."""
    with user_errors():
        s = settings(corpus_dir=corpus, index_dir=index, chunk_size=chunk_size)
        tutor = _make_tutor(s)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err, transient=True,
                      disable=json_out) as p:
            report = tutor.ingest(RichReporter(p), rebuild=rebuild)
        if json_out:
            from dataclasses import asdict

            print(json.dumps(asdict(report), ensure_ascii=False, indent=1))
            return
        if report.rebuild_reason:
            err.print(f"[yellow]full rebuild:[/yellow] {safe(report.rebuild_reason)}")
        if report.repaired:
            what = "repaired:[/yellow] rebuilt damaged" if report.repair_reason == "damaged" else \
                f"{report.repair_reason}:[/yellow] rebuilt"
            err.print(f"[yellow]{what} {safe(', '.join(report.repaired))} from the chunks")
        # the warnings were printed once each by the reporter, as they happened
        if report.noop:
            console.print(f"index is up to date ({report.files_total} files, {report.chunks} chunks) — nothing to do")
        else:
            console.print(
                f"indexed {report.files_total} files → {report.chunks} chunks in {report.seconds['total']:.1f}s "
                f"(added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)}, "
                f"unchanged {report.unchanged}, skipped {len(report.skipped)}; embedded {report.embedded} chunks"
                + (f" at {report.embedded / report.seconds['embed']:.1f} chunks/s" if report.seconds.get("embed") else "")
                + ")")


def _snippet(text: str, n: int = 110) -> str:
    return clip(terminal_safe(text), n)


@app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="the question"),
    k: int = typer.Option(5, "-k", "--top-k"),
    mode: Optional[str] = typer.Option(None, "--mode", help="hybrid | dense | bm25"),
    json_out: bool = typer.Option(False, "--json"),
):
    """Show the passages the tutor would answer from."""
    with user_errors():
        s = settings()
        result = _make_tutor(s).search(query, k=k, mode=mode)  # checks the question before loading anything
        if json_out:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
            return
        table = Table(show_lines=False, title=f"{safe(_snippet(query, 200))}  ({result.timings_ms.get('total', 0):.0f} ms)")
        table.add_column("#", justify="right")
        table.add_column("score", justify="right")
        table.add_column("source")
        table.add_column("page", justify="right")
        table.add_column("passage")
        for h in result.hits:
            c = h.chunk
            table.add_row(str(h.rank), f"{h.score:.4f}", f"{safe(c.label)}\n[dim]{safe(c.file)}[/dim]",
                          "" if c.page is None else str(c.page), escape(_snippet(c.text)))
        console.print(table)


@app.command("models")
def models_cmd(json_out: bool = typer.Option(False, "--json")):
    """List the configured models, where they live and their state, plus the effective config."""
    from .models import GGUF_PRESETS, backend_id, embedder_state, export_state, gguf_state
    from .onnx_backend import RUNTIMES

    with user_errors():
        s = settings()
        emb = s.embedding.model
        rows = [{"role": "embedder", "name": emb, "state": embedder_state(emb, s.paths.home)}]
        backend = backend_id(s.embedding.backend)
        target = RUNTIMES.get(backend, ("torch",))[0]
        rows.append({"role": "embedder backend", "name": backend,
                     "state": "sentence-transformers" if backend == "torch"
                     else export_state(emb, s.paths.home, target)})
        for name, preset in GGUF_PRESETS.items():
            mark = " (configured)" if s.llm.backend == "llamacpp" and s.llm.model == name else ""
            rows.append({"role": "llm preset" + mark, "name": name, "state": gguf_state(name, s.paths.home),
                         "about": preset.description})
        if s.llm.backend != "llamacpp":
            rows.append({"role": f"llm ({s.llm.backend})", "name": s.llm.model, "state": mask_url(s.llm.base_url)})
        shown = masked_settings(s)  # the API key, URL passwords and the UI password never in clear
        groups = regroup(shown)
        if json_out:
            print(json.dumps({"models": rows, "config": shown, "config_groups": groups}, ensure_ascii=False, indent=1))
            return
        t = Table(title=f"models (cache: {s.paths.home})")
        for col in ("role", "name", "state"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["role"], r["name"], r["state"])
        console.print(t)
        c = Table(title="effective config (defaults → tutor.toml → TUTOR_* env)")
        c.add_column(escape("[group] setting"))
        c.add_column("value")
        c.add_column("flat name (TUTOR_*)", style="dim")
        flat_of = {ga: name for name, ga in FLAT.items()}
        for group, values in groups.items():
            c.add_section()
            for attr, v in values.items():
                c.add_row(escape(f"[{group}] {attr}"), safe(str(v)), "TUTOR_" + flat_of[(group, attr)].upper())
        console.print(c)


@app.command("doctor")
def doctor_cmd(backend: Optional[str] = typer.Option(None, "--backend", help="llamacpp | openai | vllm"),
               model: Optional[str] = typer.Option(None, "--model"),
               base_url: Optional[str] = typer.Option(None, "--base-url"),
               json_out: bool = typer.Option(False, "--json")):
    """Check what `tutor ask` needs (packages, CPU, llama.cpp, models, index, server), each with its fix."""
    from .doctor import healthy, run_checks

    with user_errors():
        s = settings(backend=backend, model=model, base_url=base_url)
        checks = run_checks(s)
        ok = healthy(checks)
        if json_out:
            print(json.dumps({"ok": ok, "checks": [c.to_dict() for c in checks]}, ensure_ascii=False, indent=1))
        else:
            t = Table(title="tutor doctor")
            for col in ("check", "state", "detail / fix"):
                t.add_column(col)
            for c in checks:
                state = "[green]ok[/green]" if c.ok else ("[red]problem[/red]" if c.required else "[yellow]note[/yellow]")
                detail = safe(c.detail) + (f"\n[bold]fix:[/bold] {safe(c.fix)}" if c.fix and not c.ok else "")
                t.add_row(safe(c.name), state, detail)
            console.print(t)
            console.print("[green]all ok[/green]" if ok else "[red]something `tutor ask` needs is broken: see the fixes above[/red]")
        if not ok:
            raise typer.Exit(1)


STAGES = {"retrieving": {"zh": "检索笔记…", "en": "searching the notes…"},
          "thinking": {"zh": "思考中…", "en": "thinking…"},
          "rewriting": {"zh": "理解追问…", "en": "reading the follow-up…"}}


def _render_sources(answer) -> None:
    if answer.refused:
        return
    cited = {c.n for c in answer.citations}
    if not cited:
        console.print("[yellow]（ungrounded: no valid citation）[/yellow]")
    for i, h in enumerate(answer.sources, start=1):
        if i not in cited:
            continue
        c = h.chunk
        page = f", p. {c.page}" if c.page is not None else ""
        console.print(f"  [bold][{i}][/bold] {safe(c.label)}{page} [dim]({safe(c.file)})[/dim]", highlight=False)


def _render_evidence(out: Console, units, lang: str) -> None:
    """The evidence the answer will stand on, shown before the model's first token."""
    out.print("[bold]" + ("证据" if lang == "zh" else "evidence") + "[/bold]", highlight=False)
    for u in units:
        c = u.hit.chunk
        page = f", p. {c.page}" if c.page is not None else ""
        out.print(f"  [bold][{u.n}][/bold] {escape(_snippet(u.prompt_text(), 140))} "
                  f"[dim]— {safe(c.short_label)}{page}[/dim]", highlight=False)


def _stream_answer(tutor, question: str, history=None, k=None, show_reasoning=False, level=None):
    """Render one answer live, then replace the preview with the final cited text.
    Returns the final Answer (None if interrupted)."""
    from rich.live import Live
    from rich.text import Text

    from .glossary import language

    lang = language(question)
    answer = None
    preview = ""
    events = tutor.ask_stream(question, history=history, k=k, level=level)
    first = next(events)  # a bad question fails here, before anything is drawn
    live = Live(Text(""), console=console, refresh_per_second=8, transient=True)
    try:
        with live:
            for ev in itertools.chain([first], events):
                if ev.kind == "stage":
                    live.console.print(f"[dim]{STAGES.get(ev.text, {}).get(lang, ev.text)}[/dim]")
                elif ev.kind == "rewritten":
                    live.console.print(f"[dim]→ {safe(ev.text)}[/dim]", highlight=False)
                elif ev.kind == "evidence" and ev.evidence:
                    _render_evidence(live.console, ev.evidence, lang)
                elif ev.kind == "reasoning" and show_reasoning:
                    live.console.print(Text(terminal_safe(ev.text), style="dim"), end="")
                elif ev.kind == "token":
                    preview += terminal_safe(ev.text)
                    live.update(Text(preview))
                elif ev.kind == "done":
                    answer = ev.answer
    except KeyboardInterrupt:
        console.print(Text(preview))
        console.print("[dim](stopped)[/dim]")
        return None
    console.print(Text(terminal_safe(answer.text)))
    _render_sources(answer)
    if answer.suggestions:
        console.print("[dim]" + ("接着可以问：" if lang == "zh" else "you could ask next:") + "[/dim]")
        for q in answer.suggestions:
            console.print(f"  [cyan]→[/cyan] {safe(q)}", highlight=False)
    return answer


@app.command("ask")
def ask_cmd(
    question: str = typer.Argument(..., help="the learner's question (zh or en)"),
    k: Optional[int] = typer.Option(None, "-k", "--top-k"),
    backend: Optional[str] = typer.Option(None, "--backend", help="llamacpp | openai | vllm"),
    model: Optional[str] = typer.Option(None, "--model", help="preset, GGUF path or served model name"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. http://gpu:8000/v1"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
    reasoning: bool = typer.Option(False, "--show-reasoning", help="print the model's thinking (dim)"),
    level: Optional[str] = typer.Option(None, "--level", help="beginner | advanced: the same sources, told simpler or deeper"),
):
    """Answer a question from the corpus, with cited sources."""
    from .prompts import LEVELS

    with user_errors():
        if level is not None and level not in LEVELS:
            raise ValueError(f"--level must be one of {', '.join(LEVELS)}")
        s = settings(backend=backend, model=model, base_url=base_url, top_k=k)
        tutor = _make_tutor(s)  # loads nothing yet: the API checks the question first
        if json_out:
            print(json.dumps(tutor.ask(question, k=k, level=level).to_dict(), ensure_ascii=False))
            return
        _stream_answer(tutor, question, k=k, show_reasoning=reasoning, level=level)


@app.command("chat")
def chat_cmd(
    backend: Optional[str] = typer.Option(None, "--backend"),
    model: Optional[str] = typer.Option(None, "--model"),
    base_url: Optional[str] = typer.Option(None, "--base-url"),
    k: Optional[int] = typer.Option(None, "-k", "--top-k"),
):
    """Multi-turn tutoring in the terminal. /sources, /reset, /quit; Ctrl-C stops an answer."""
    from .chat import Conversation

    with user_errors():
        tutor = _make_tutor(settings(backend=backend, model=model, base_url=base_url, top_k=k))
        conv = Conversation()
        last = None
        console.print("[bold]用AI学AI[/bold] — ask about deep learning & LLMs. /sources /reset /quit")
        while True:
            try:
                q = console.input("[bold cyan]你> [/bold cyan]").strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            if not q:
                continue
            if q in ("/quit", "/exit", "/q"):
                break
            if q == "/reset":
                conv.reset()
                last = None
                console.print("[dim]history cleared[/dim]")
                continue
            if q == "/sources":
                if last is None:
                    console.print("[dim]no answer yet[/dim]")
                for i, h in enumerate(last.sources if last else [], start=1):
                    c = h.chunk
                    console.print(f"[bold][{i}][/bold] {safe(c.label)}"
                                  + (f", p. {c.page}" if c.page else "") + f"\n[dim]{safe(_snippet(c.text, 300))}[/dim]",
                                  highlight=False)
                continue
            try:
                ans = _stream_answer(tutor, q, history=conv.turns, k=k)
            except (LLMError, ValueError) as e:  # one failed turn must not end the session
                print_error(e)
                continue
            if ans is not None:
                conv.add(q, ans.text)
                last = ans


@app.command("serve")
def serve_cmd(host: Optional[str] = typer.Option(None, "--host"), port: Optional[int] = typer.Option(None, "--port"),
              share: bool = typer.Option(False, "--share", help="also open a public Gradio share link"),
              auth: Optional[str] = typer.Option(None, "--auth", metavar="USER:PASSWORD",
                                                 help="log-in for the web UI (or TUTOR_AUTH); needed beyond loopback"),
              no_auth: bool = typer.Option(False, "--no-auth",
                                           help="serve beyond loopback without a log-in (trusted networks only)")):
    """Start the web UI (Gradio) on 127.0.0.1:7860 by default."""
    with user_errors():
        from .serving import check_exposure

        s = settings(host=host, port=port, auth=auth)
        check_exposure(s.ui.host, s.ui.auth, no_auth, share)  # fails fast, before gradio is even imported
        from .ui import launch

        launch(s, s.ui.host, s.ui.port, share=share, no_auth=no_auth)  # asks for s.auth's log-in


@app.command("bench")
def bench_cmd(
    dataset: Path = typer.Option(Path("evals/datasets/dev.jsonl"), "--dataset", help="JSONL in the EVAL_SCHEMA.md format"),
    serve: Optional[str] = typer.Option(None, "--serve", metavar="MODEL",
                                        help="start a server for MODEL and bench it: a hub id or folder → `vllm serve`, "
                                             "a GGUF preset or .gguf path → llama.cpp's server"),
    serve_arg: list[str] = typer.Option([], "--serve-arg", help="extra argument for `vllm serve` (repeatable), "
                                                                 "e.g. --serve-arg=--gpu-memory-utilization=0.9"),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="bench a running OpenAI-compatible server instead"),
    model: Optional[str] = typer.Option(None, "--model", help="the served model name (with --base-url)"),
    concurrency: str = typer.Option("1,8,32", "--concurrency", help="comma-separated levels"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only the first N items"),
    serial_limit: int = typer.Option(20, "--serial-limit", help="items at concurrency 1 (0: all)"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="reply cap (R1 distills think: give them 2048+)"),
    judge: Optional[str] = typer.Option(None, "--judge", help="claims | lexical"),
    out: Optional[Path] = typer.Option(None, "--out", help="report folder (default evals/bench/<model>-<time>)"),
):
    """Answers/s, output tokens/s, TTFT and end-to-end p50/p95, thinking vs answer tokens, GPU
    memory and answer quality at each concurrency level; bench.json + bench.md in --out."""
    import time as _time
    from contextlib import nullcontext

    from .evaluation.bench import run_bench
    from .evaluation.dataset import is_multiturn, load_dataset
    from .llm.launch import serve as start_server

    with user_errors():
        levels = [int(x) for x in concurrency.split(",") if x.strip()]
        if not levels or min(levels) < 1:
            raise ValueError("--concurrency takes levels ≥ 1, e.g. 1,8,32")
        if serve and base_url:
            raise ValueError("--serve starts its own server: leave out --base-url")
        if not dataset.is_file() or is_multiturn(dataset):
            raise ValueError(f"{dataset}: not a single-turn dataset file (EVAL_SCHEMA.md)")
        s = settings(max_tokens=max_tokens, judge=judge)
        items = load_dataset(dataset, s.paths.corpus_dir)[: limit or None]
        if not items:
            raise ValueError(f"{dataset}: no items")
        name = (serve or model or s.llm.model).replace("/", "_")
        out = out or Path("evals/bench") / f"{Path(name).stem}-{_time.strftime('%Y%m%d-%H%M%S')}"
        out.mkdir(parents=True, exist_ok=True)
        if serve:
            err.print(f"starting a server for {safe(serve)} (log: {out / 'server.log'})…")
        ctx = start_server(serve, out / "server.log", home=s.paths.home, n_ctx=s.llm.n_ctx, n_threads=s.llm.n_threads,
                           extra=serve_arg) if serve else nullcontext(None)
        with ctx as srv:
            if srv is not None:
                s = s.replace(backend="openai", base_url=srv.base_url, model=srv.model)
            elif base_url:
                s = s.replace(backend="openai", base_url=base_url, model=model)
            tutor = _make_tutor(s)
            bs = tutor.embedder.probe_batch_size()
            info = {"model": s.llm.model, "backend": s.llm.backend, "server": srv.kind if srv else
                    (mask_url(s.llm.base_url) if s.llm.backend == "openai" else s.llm.backend), "dataset": str(dataset),
                    "serial_limit": serial_limit, "max_tokens": s.llm.max_tokens, "embed_batch_size": bs}
            run_bench(tutor, items, levels, out, judge=s.judge.name, serial_limit=serial_limit or None, info=info,
                      say=lambda m: console.print(safe(m), soft_wrap=True))
        console.print(f"report: {out / 'bench.md'}")


# ---- tutor modes: quiz, grading, learning path, progress -------------------------------------------

VERDICT_STYLE = {"correct": "green", "partial": "yellow", "wrong": "red"}
VERDICT_TEXT = {"zh": {"correct": "正确", "partial": "部分正确", "wrong": "错误"},
                "en": {"correct": "correct", "partial": "partly right", "wrong": "wrong"}}


def _render_grade(g, lang: str) -> None:
    style = VERDICT_STYLE[g.verdict]
    console.print(f"[bold {style}]{VERDICT_TEXT[lang][g.verdict]}[/bold {style}] "
                  f"[dim](score {g.score:.2f}, decided by {g.decided_by})[/dim]")
    if g.missing and g.verdict != "correct":
        console.print(("还缺：" if lang == "zh" else "missing: ") + safe("；".join(g.missing)), highlight=False)
    quote = safe(g.quote).replace("【", "[bold reverse]").replace("】", "[/bold reverse]")
    console.print(("[dim]资料原文：[/dim]" if lang == "zh" else "[dim]the source says:[/dim] ") + quote, highlight=False)


@app.command("quiz")
def quiz_cmd(
    topic: Optional[str] = typer.Argument(None, help="a learning-path topic (number or title), any query, or none"),
    n: int = typer.Option(5, "-n", help="number of questions"),
    lang: Optional[str] = typer.Option(None, "--lang", help="zh | en (default: the topic's language)"),
    seed: int = typer.Option(0, "--seed", help="same seed, same quiz"),
    json_out: bool = typer.Option(False, "--json", help="print the quiz as JSON and exit"),
    use_llm: Optional[bool] = typer.Option(None, "--llm/--no-llm",
                                           help="let the LLM rephrase the template questions (checked); "
                                                "default: the quiz_llm_phrasing setting (off)"),
    grade_file: Optional[Path] = typer.Option(None, "--grade", metavar="QUESTION_JSON",
                                              help="grade an answer to this question (a file with one question "
                                                   "object of `quiz --json`, or - for stdin); prints JSON"),
    answer: Optional[str] = typer.Option(None, "--answer", help="the learner's answer (with --grade)"),
    record: bool = typer.Option(True, "--record/--no-record", help="store attempts in the progress database"),
):
    """Quiz yourself on the notes: recall, cloze and explain questions with answer keys and sources."""
    with user_errors():
        if lang is not None and lang not in ("zh", "en"):
            raise ValueError("--lang must be zh or en")
        s = settings()
        if grade_file is not None:
            raw = sys.stdin.read() if str(grade_file) == "-" else grade_file.read_text(encoding="utf-8")
            try:
                q = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"{grade_file}: not a question JSON ({e.msg})") from None
            if isinstance(q, dict) and "questions" in q:  # a whole quiz: the first question
                q = q["questions"][0]
            if not isinstance(q, dict) or "answer_key" not in q:
                raise ValueError(f"{grade_file}: expected a question object with an answer_key")
            if answer is None:
                raise ValueError("--grade needs --answer TEXT")
            g = _make_tutor(s).grade(q, answer, record=record)
            print(json.dumps(g.to_dict(), ensure_ascii=False))
            return
        tutor = _make_tutor(s)
        quiz = tutor.quiz(topic, n=n, seed=seed, lang=lang, use_llm=use_llm)
        if json_out:
            print(json.dumps(quiz.to_dict(), ensure_ascii=False))
            return
        if not quiz.questions:
            raise ValueError("no quiz questions found for this topic; try another topic or none")
        ql = quiz.lang
        console.print(f"[bold]{'测验' if ql == 'zh' else 'Quiz'}[/bold]: {safe(quiz.topic or ('学习笔记' if ql == 'zh' else 'the notes'))} "
                      f"[dim](seed {quiz.seed}, {len(quiz.questions)} {'题' if ql == 'zh' else 'questions'})[/dim]")
        right = 0.0
        for i, q in enumerate(quiz.questions, start=1):
            console.print(f"\n[bold]{i}.[/bold] {safe(q.question)} [dim]({q.kind})[/dim]", highlight=False)
            try:
                reply = console.input("[bold cyan]> [/bold cyan]")
            except (EOFError, KeyboardInterrupt):
                console.print()
                break
            g = tutor.grade({**q.to_dict(), "topic": quiz.topic}, reply, record=record)
            right += g.score
            _render_grade(g, ql)
        console.print(f"\n[bold]{'得分' if ql == 'zh' else 'score'}: {right:.1f} / {len(quiz.questions)}[/bold]")


@app.command("path")
def path_cmd(
    json_out: bool = typer.Option(False, "--json"),
    done: Optional[str] = typer.Option(None, "--done", metavar="TOPIC", help="mark a topic done (number or title)"),
    undo: Optional[str] = typer.Option(None, "--undo", metavar="TOPIC", help="clear a topic's done mark"),
):
    """The learning path: the notes' own roadmap topics in order, with passages, d2l chapters and papers."""
    with user_errors():
        tutor = _make_tutor(settings())
        if done is not None or undo is not None:
            topics = tutor.learning_path(related=False)  # cheap: no search
            for ref, mark in ((done, True), (undo, False)):
                if ref is None:
                    continue
                t = topics.find(ref)
                if t is None:
                    raise ValueError(f"no learning-path topic {ref!r} (see `tutor path`)")
                tutor.progress_db.mark_done(t.title, mark)
                err.print(f"{'marked done' if mark else 'cleared'}: {safe(t.title)}")
        path = tutor.learning_path(related=json_out)
        if json_out:
            print(json.dumps(path.to_dict(), ensure_ascii=False))
            return
        t = Table(title="学习路线 / learning path")
        for col in ("#", "topic", "d2l-zh", "papers", "done"):
            t.add_column(col)
        track = None
        for topic in path.topics:
            if topic.track != track:
                t.add_row("", f"[bold]{safe(topic.track)}[/bold]", "", "", "")
                track = topic.track
            papers = ", ".join(p["key"] for p in topic.papers[:4]) + (" …" if len(topic.papers) > 4 else "")
            t.add_row(str(topic.order), safe(topic.title), safe(", ".join(d["title"] for d in topic.d2l)),
                      safe(papers), "[green]✓[/green]" if topic.done else "")
        console.print(t)
        console.print("[dim]tutor quiz N -n 3 quizzes topic N; tutor path --done N marks it; --json lists passages "
                      "and arXiv links[/dim]")


@app.command("progress")
def progress_cmd(json_out: bool = typer.Option(False, "--json"),
                 recent: int = typer.Option(5, "--recent", help="also list the last N attempts")):
    """Your quiz attempts and topics done, per topic (stored in the data dir's progress.db)."""
    from dataclasses import asdict

    with user_errors():
        s = settings()
        from .progress import Progress

        db = Progress.of(s)
        topics = db.topics()
        last = db.attempts(limit=recent) if recent > 0 else []
        if json_out:
            print(json.dumps({"database": str(db.path), "topics": [asdict(t) for t in topics],
                              "recent": [asdict(a) for a in last]}, ensure_ascii=False))
            return
        t = Table(title=f"progress ({db.path})")
        for col in ("topic", "attempts", "correct", "score", "done"):
            t.add_column(col, justify="right" if col in ("attempts", "correct", "score") else "left")
        for ts in topics:
            t.add_row(safe(ts.topic or "—"), str(ts.attempts), str(ts.correct), f"{ts.score:.2f}",
                      "[green]✓[/green]" if ts.done else "")
        console.print(t)
        if not topics:
            console.print("[dim]no attempts yet: try `tutor quiz`[/dim]")
        for a in last:
            style = VERDICT_STYLE.get(a.verdict, "white")
            console.print(f"[{style}]{a.verdict:8}[/{style}] {safe(_snippet(a.question, 70))} → {safe(_snippet(a.answer, 30))}",
                          highlight=False)


eval_app = typer.Typer(help="Measure the tutor on a dataset (EVAL_SCHEMA.md format).", no_args_is_help=False,
                       invoke_without_command=True)
app.add_typer(eval_app, name="eval")


@eval_app.callback(invoke_without_command=True)
def eval_cmd(
    ctx: typer.Context,
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="JSONL in the EVAL_SCHEMA.md format"),
    quiz: Optional[Path] = typer.Option(None, "--quiz", help="quiz-grading labels (evals/QUIZ_SCHEMA.md): grader agreement"),
    json_out: bool = typer.Option(False, "--json", help="with --quiz: print the report as JSON"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder (default evals/runs/<dataset>-<time>)"),
    retrieval_only: bool = typer.Option(False, "--retrieval-only", help="score retrieval only (no LLM)"),
    backend: Optional[str] = typer.Option(None, "--backend"),
    model: Optional[str] = typer.Option(None, "--model"),
    base_url: Optional[str] = typer.Option(None, "--base-url"),
    judge: Optional[str] = typer.Option(None, "--judge", help="claims | lexical | llm | likelihood"),
    judge_model: Optional[str] = typer.Option(None, "--judge-model"),
    judge_backend: Optional[str] = typer.Option(None, "--judge-backend"),
    judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url"),
    concurrency: int = typer.Option(1, "--concurrency", help="parallel questions (use 32 against vllm serve)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only the first N items"),
    k: Optional[int] = typer.Option(None, "-k", "--top-k"),
    mode: Optional[str] = typer.Option(None, "--mode", help="retrieval mode to answer from"),
    baseline: Optional[str] = typer.Option(None, "--baseline",
                                           help="also run a baseline pipeline beside the tutor: llamaindex "
                                                "(llama-index defaults, same corpus, embedder and LLM) → OUT/baseline-llamaindex"),
):
    """Run a dataset through the tutor and write results.jsonl, report.json, report.md."""
    if ctx.invoked_subcommand is not None:
        return
    import time as _time

    from .evaluation.runner import EvalOptions, run

    with user_errors():
        if quiz is not None:
            _eval_quiz(quiz, json_out)
            return
        if dataset is None:
            raise ValueError("--dataset FILE is required (e.g. evals/datasets/dev.jsonl)")
        if not dataset.is_file():
            raise ValueError(f"dataset not found: {dataset}")
        s = settings(backend=backend, model=model, base_url=base_url, judge=judge, judge_model=judge_model,
                     judge_backend=judge_backend, judge_base_url=judge_base_url, top_k=k, retrieval_mode=mode)
        out = out or Path("evals/runs") / f"{dataset.stem}-{_time.strftime('%Y%m%d-%H%M%S')}"
        tutor = _make_tutor(s)
        answer_row = batch_answer = scoring_judge = None
        if not retrieval_only:
            from .evaluation.answers import make_answer_row
            from .evaluation.judges import make_judge
            from .llm.base import backend_kind

            scoring_judge = make_judge(s, s.judge.name)
            answer_row = make_answer_row(scoring_judge)
            if backend_kind(s.llm.backend) == "vllm":  # in-process vLLM: all prompts in one batch
                from .evaluation.answers import make_batch_answer

                batch_answer = make_batch_answer(scoring_judge)
        if baseline is not None:
            _check_baseline(baseline, dataset)
        opts = EvalOptions(dataset=dataset, out=out, retrieval_only=retrieval_only, limit=limit,
                           concurrency=concurrency, judge=s.judge.name)
        report = _run_with_progress(f"eval {dataset.name}", lambda progress: run(
            tutor, opts, progress=progress, answer_row=answer_row, batch_answer=batch_answer, judge=scoring_judge))
        _print_summary(report)
        if baseline is not None:
            base_out = _run_baseline(s, tutor, opts)
            console.print(f"baseline: {base_out / 'report.md'}")
        console.print(f"report: {out / 'report.md'}")


def _run_with_progress(label: str, fn):
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as p:
        task = p.add_task(label, total=None)
        return fn(lambda d, t: p.update(task, completed=d, total=t))


def _check_baseline(name: str, dataset: Path) -> None:
    from .evaluation.dataset import is_multiturn

    if name != "llamaindex":
        raise ValueError(f"unknown baseline {name!r}: the one baseline is llamaindex")
    if is_multiturn(dataset):
        raise ValueError("--baseline runs single-turn datasets (EVAL_SCHEMA.md), not conversations")
    from .evaluation.baseline import _require

    _require()


def _run_baseline(s: Settings, tutor, opts) -> Path:
    """The llama-index baseline into OUT/baseline-llamaindex, then beside the tutor in OUT's report."""
    from contextlib import nullcontext
    from dataclasses import replace

    from .evaluation import baseline as bl
    from .evaluation.compare import append_baseline
    from .evaluation.runner import run

    base_out = Path(opts.out) / f"baseline-{bl.NAME}"
    index = bl.load_or_build_index(s, progress=lambda m: err.print(safe(m)))
    llm_ctx = nullcontext((None, "")) if opts.retrieval_only else bl.baseline_llm(s, base_out)
    with llm_ctx as (llm, llm_name):
        pipe = bl.LlamaIndexBaseline(index, llm, llm_name, s.judge.name, s)
        bopts = replace(opts, out=base_out, pipeline=bl.signature(s, opts.retrieval_only))
        report = _run_with_progress("llama-index baseline", lambda progress: run(
            tutor, bopts, progress=progress, retrieval=pipe.retrieval_row,
            answer_row=None if opts.retrieval_only else pipe.make_answer_row(),
            judge=None if opts.retrieval_only else pipe.judge))
    _print_summary(report)
    append_baseline(Path(opts.out), base_out)
    return base_out


@eval_app.command("compare")
def eval_compare(run_a: Path = typer.Argument(..., help="run folder A"),
                 run_b: Path = typer.Argument(..., help="run folder B")):
    """Two run folders side by side, then the per-item changes."""
    from rich.markdown import Markdown

    from .evaluation.compare import compare_runs

    with user_errors():  # a path that is no run folder: one ValueError line
        console.print(Markdown(compare_runs(run_a, run_b)))


@eval_app.command("judge")
def eval_judge(
    labels: Path = typer.Option(..., "--labels", help="hand labels, JSONL (evals/JUDGE_LABELS.md)"),
    judge: Optional[str] = typer.Option(None, "--judge", help="claims | lexical | llm | likelihood"),
    judge_model: Optional[str] = typer.Option(None, "--judge-model"),
    judge_backend: Optional[str] = typer.Option(None, "--judge-backend"),
    judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url"),
    judge_mode: Optional[str] = typer.Option(None, "--judge-mode", help="llm judge: logprob | text"),
    calibrate: bool = typer.Option(False, "--calibrate",
                                   help="fit the llm judge's threshold, cross-validated (5 folds)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="only the first N labels"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
):
    """Agreement of a judge with hand labels: accuracy, Cohen's κ, precision / recall of
    "unsupported", confusion counts, per language and kind, and the first disagreements."""
    from rich.markdown import Markdown

    from .evaluation.judge_eval import agreement_md, evaluate, load

    with user_errors():
        s = settings(judge=judge, judge_model=judge_model, judge_backend=judge_backend,
                     judge_base_url=judge_base_url, judge_mode=judge_mode)
        rows = load(labels)
        if limit is not None:
            if limit < 1:
                raise ValueError("--limit must be at least 1")
            rows = rows[:limit]
        out = evaluate(s, s.judge.name, rows, calibrate=calibrate)
        out["labels"] = str(labels)
        if json_out:
            print(json.dumps(out, ensure_ascii=False, indent=1))
        else:
            console.print(Markdown(agreement_md(out)))


def _eval_quiz(path: Path, json_out: bool) -> None:
    from rich.markdown import Markdown

    from .evaluation.quiz_eval import evaluate, load, report_md

    if not path.is_file():
        raise ValueError(f"quiz labels not found: {path}")
    s = settings()
    llm = _make_tutor(s).llm if s.quiz.llm_grader else None
    out = evaluate(load(path), llm=llm, corpus_dir=s.paths.corpus_dir)
    out["labels"] = str(path)
    if json_out:
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        console.print(Markdown(report_md(out)))


def _print_summary(report: dict) -> None:
    t = Table(title="retrieval (answerable items)")
    for col in ("mode", "n", "hit@1", "hit@3", "hit@5", "hit@10", "mrr"):
        t.add_column(col, justify="right")
    for mode, groups in report["retrieval"].items():
        o = groups.get("overall", {})
        t.add_row(mode, str(o.get("n", 0)), *(f"{o.get(c, 0):.3f}" for c in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr")))
    console.print(t)
    if "answers" in report:
        a = report["answers"].get("overall", {})
        console.print("answers: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in a.items()))
        ev = report.get("evidence_check") or {}
        if ev:
            console.print(f"evidence check: {ev.get('with_figure_not_in_evidence')} of {ev.get('answers')} answers "
                          f"show a figure their evidence lacks; answer length p50 {ev.get('answer_chars_p50')} chars")
    if "multiturn" in report:
        f, rw = report["multiturn"]["followup"], report["multiturn"]["rewrite"]
        console.print("follow-ups: " + ", ".join(f"{k}={f[k]:.3f}" for k in ("hit@5", "mrr", "correct") if f.get(k) is not None)
                      + f"; rewrites rejected {rw['rejected']}/{rw['model_asked']}, "
                        f"dropped the follow-up's question {rw['dropped_question']}")


def main() -> None:
    try:
        app()
    except ConfigError as e:  # from a settings read outside `user_errors`: exit code 2
        print_error(e)
        sys.exit(2)


if __name__ == "__main__":
    main()
