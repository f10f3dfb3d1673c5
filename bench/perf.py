"""Performance benchmarks of the service; prints Markdown for BENCHMARKS.md.

    .venv/bin/python bench/perf.py [--runs 15] [--cases 50] [--bundles 100] [--postgres URL] [--profile]

1. The model household's bundle: the service's path (determination, mapping, rendering) and
   render_bundle alone, against the floor: the same pages, with the same fonts, the same strings at
   the same places, the same rules, QR codes and signature images, drawn with reportlab alone.
2. Cases created per second through the HTTP API (in-process ASGI, one client, sequential), on a
   fresh SQLite file and on PostgreSQL (a throw-away database on the given server).
3. Memory (RSS) of one uvicorn worker after start-up and after N bundles over HTTP.
4. Start-up: importing the app, create_app (definitions load and check), loading the fonts.
5. (--profile) where the bundle's time goes, by function.

Everything runs on this machine; numbers vary with load, so each timing is a median of repeats.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "--no-accel" in sys.argv:
    # Measure reportlab without its C accelerator (rl_accel), as before it was a dependency.
    sys.modules["_rl_accel"] = None  # type: ignore[assignment]

from app.bench.visit import DEFAULT_HOUSEHOLD, signature_png  # noqa: E402
from app.db import create_postgres_database, drop_postgres_database  # noqa: E402
from app.forms import bundle, layout, primitives, render, typeset  # noqa: E402
from app.forms.determine import determine  # noqa: E402
from app.forms.fonts import ROLE_NAME, ROLE_TEXT, load_fonts, strip_variation_selectors  # noqa: E402
from app.forms.loader import load_definitions  # noqa: E402
from app.forms.mapping import resolve_all  # noqa: E402

PASSWORD = "perf-benchmark-password"  # noqa: S105 - a throw-away account in a throw-away database
CASE_NUMBER = "20260406-honcho-001"


def median_times(fns: Sequence[Callable[[], Any]], runs: int) -> list[float]:
    """Median wall time of each function; they take turns in every round, so a burst of load on the
    shared machine hits all of them alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def machine() -> list[str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    import reportlab
    from reportlab.lib import rl_accel

    accel = "yes" if rl_accel._c_funcs else "no"
    return [f"- CPU: {cpu}, `nproc` = {os.cpu_count()} (shared with other work while measuring)",
            f"- RAM: {mem_kb / 1024 / 1024:.1f} GiB; OS: {platform.platform()}",
            f"- Python {platform.python_version()}, reportlab {reportlab.Version}, rl_accel C extension: {accel}"]


# --- 1. Bundle vs the reportlab floor ------------------------------------------------------------------


def _options(fonts: Any, png: bytes) -> render.RenderOptions:
    return render.RenderOptions(fonts=fonts, qr_url=f"kakanai:{CASE_NUMBER}", signature_png=png, city_name="みなと市",
                                generated_label="書かない窓口で作成　定義 perf")


def _pages(forms: Sequence[Any], options: render.RenderOptions) -> list[Any]:
    """The bundle's planned pages (cover + forms), with every primitive the renderer will draw."""
    # The planner is private to the renderer; the benchmark reads it to draw exactly the same things.
    measure = typeset.Measure(options.fonts)
    plans = [layout.plan_form(form, options, measure) for form in forms]
    cover = bundle.plan_cover(plans, options, measure, "申請書一式", [("案件番号", CASE_NUMBER)], 1)
    cover = bundle.plan_cover(plans, options, measure, "申請書一式", [("案件番号", CASE_NUMBER)], len(cover))
    return cover + [page for plan in plans for page in plan.pages]


def floor_pdf(pages: Sequence[Any], fonts: Any, png: bytes) -> bytes:
    """The same pages drawn with reportlab alone: plain TTFonts, drawString, rect, the QR path, the image."""
    import segno
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen.canvas import Canvas

    names = {}
    for role in (ROLE_TEXT, ROLE_NAME):
        font = fonts.font_name(role)
        path = getattr(pdfmetrics.getFont(font), "path", None)
        name = f"Floor-{role}"
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(path)))
        names[role] = name
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=pages[0].size, invariant=1, pageCompression=1, initialFontName=names[ROLE_TEXT])
    image = ImageReader(io.BytesIO(png))
    qr: dict[str, Any] = {}
    for page in pages:
        c.setPageSize(page.size)
        for prim in page.prims:
            if isinstance(prim, primitives.Text):
                c.setFont(names[prim.role], prim.size)
                c.drawString(prim.x, prim.y, strip_variation_selectors(prim.text))
            elif isinstance(prim, primitives.Rect):
                b = prim.box
                c.rect(b.x, b.y, b.w, b.h, stroke=1 if prim.stroke else 0, fill=1 if prim.fill is not None else 0)
            elif isinstance(prim, primitives.Poly):
                path = c.beginPath()
                path.moveTo(*prim.points[0])
                for point in prim.points[1:]:
                    path.lineTo(*point)
                c.drawPath(path, stroke=1, fill=0)
            elif isinstance(prim, primitives.Image):
                b = prim.box
                c.drawImage(image, b.x, b.y, b.w, b.h, mask="auto")
            elif isinstance(prim, primitives.QR):
                matrix = qr.get(prim.data) or qr.setdefault(prim.data, tuple(segno.make_qr(prim.data, error="m").matrix))
                b = prim.box
                module = b.w / (len(matrix) + 2 * primitives.QR_BORDER)
                path = c.beginPath()
                for r, row in enumerate(matrix):
                    for col, dark in enumerate(row):
                        if dark:
                            path.rect(b.x + (primitives.QR_BORDER + col) * module, b.top - (primitives.QR_BORDER + r + 1) * module,
                                      module, module)
                c.drawPath(path, stroke=0, fill=1)
        c.showPage()
    c.save()
    return buffer.getvalue()


def bench_bundle(runs: int) -> tuple[list[str], dict[str, Any]]:
    """The bundle against the floor, in the same process and run."""
    answers = json.loads(DEFAULT_HOUSEHOLD.read_text(encoding="utf-8"))
    defs = load_definitions(ROOT / "form_definitions")
    fonts = load_fonts()
    png = signature_png()
    options = _options(fonts, png)

    def pipeline() -> bytes:
        forms = resolve_all(defs, determine(defs, answers, case_number=CASE_NUMBER), case_number=CASE_NUMBER)
        return render.render_bundle(forms, options, cover_title="申請書一式", cover_lines=[("案件番号", CASE_NUMBER)])

    forms = resolve_all(defs, determine(defs, answers, case_number=CASE_NUMBER), case_number=CASE_NUMBER)
    pdf = pipeline()
    pages = _pages(forms, options)
    texts = [p for page in pages for p in page.prims if isinstance(p, primitives.Text)]
    floor = floor_pdf(pages, fonts, png)
    t_pipeline, t_render, t_floor, t_plan = median_times([
        pipeline,
        lambda: render.render_bundle(forms, options, cover_title="申請書一式", cover_lines=[("案件番号", CASE_NUMBER)]),
        lambda: floor_pdf(pages, fonts, png),
        lambda: _pages(forms, options),
    ], runs)
    from pypdf import PdfReader

    n_pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert n_pages == len(PdfReader(io.BytesIO(floor)).pages) == len(pages)
    rows = [
        f"Model household: {len(forms)} forms, {n_pages} pages, {len(texts)} strings "
        f"({sum(len(t.text) for t in texts)} characters), median of {runs} runs.", "",
        "| what | ms | × floor | PDF size |", "|---|---:|---:|---:|",
        f"| determination + mapping + render_bundle (the service's path) | {t_pipeline * 1000:.1f} | "
        f"{t_pipeline / t_floor:.2f} | {len(pdf) // 1024} KiB |",
        f"| render_bundle alone | {t_render * 1000:.1f} | {t_render / t_floor:.2f} | {len(pdf) // 1024} KiB |",
        f"| of which planning the pages (layout, measuring, wrapping) | {t_plan * 1000:.1f} | {t_plan / t_floor:.2f} | |",
        f"| **floor**: the same pages drawn with reportlab alone | {t_floor * 1000:.1f} | 1.00 | {len(floor) // 1024} KiB |",
    ]
    return rows, {"forms": forms, "options": options}


def bench_profile(forms: Any, options: Any) -> list[str]:
    """Top functions of five bundles by own time."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        render.render_bundle(forms, options, cover_title="申請書一式", cover_lines=[("案件番号", CASE_NUMBER)])
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = ["| function | own time share |", "|---|---:|"]
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:10]  # type: ignore[attr-defined]
    for (file, line, name), (_cc, _nc, tt, _ct, _callers) in entries:
        where = file.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        rows.append(f"| `{where}:{line}({name})` | {100 * tt / total:.0f} % |")
    return rows


# --- 2. Cases per second through the API ---------------------------------------------------------------


def _prepare(url: str, data_dir: Path) -> Any:
    from app.cli import migrate
    from app.db import make_engine, make_sessionmaker
    from app.services import auth
    from app.settings import Settings

    settings = Settings(env="development", database_url=url, data_dir=data_dir, log_level="WARNING",
                        **({"live_poll_interval": 0} if "live_poll_interval" in Settings.model_fields else {}))
    migrate(settings)
    _quiet()  # alembic's env.py re-reads the logging configuration of alembic.ini
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as s:
        auth.create_user(s, username="perf", password=PASSWORD, role="admin")
    engine.dispose()
    return settings


def bench_cases(url: str, label: str, count: int, data_dir: Path) -> str:
    """POST /api/v1/cases `count` times; cases per second."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = _prepare(url, data_dir)
    answers = json.loads(DEFAULT_HOUSEHOLD.read_text(encoding="utf-8"))
    app = create_app(settings)
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "perf", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert client.post("/api/v1/cases", json=answers, headers=headers).status_code == 201
        started = time.perf_counter()
        for _ in range(count):
            res = client.post("/api/v1/cases", json=answers, headers=headers)
            assert res.status_code == 201, res.text
        elapsed = time.perf_counter() - started
    app.state.engine.dispose()
    return f"| {label} | {count} | {count / elapsed:.1f} | {1000 * elapsed / count:.1f} |"


# --- 3. Memory of one worker, 4. start-up ---------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_memory(bundles: int, data_dir: Path) -> list[str]:
    """RSS of a real uvicorn worker (own process) after start-up, after one bundle, after N bundles."""
    import httpx

    url = f"sqlite:///{data_dir / 'memory.db'}"
    _prepare(url, data_dir)
    port = _free_port()
    env = {**os.environ, "KAKANAI_DATABASE_URL": url, "KAKANAI_DATA_DIR": str(data_dir), "KAKANAI_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),  # noqa: S603
                             "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start")
                time.sleep(0.1)
            started = _rss_kib(proc.pid)
            token = client.post("/api/v1/auth/token", data={"username": "perf", "password": PASSWORD}).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            answers = json.loads(DEFAULT_HOUSEHOLD.read_text(encoding="utf-8"))
            case = client.post("/api/v1/cases", json=answers, headers=headers).json()["id"]
            client.put(f"/api/v1/cases/{case}/signature", content=signature_png(),
                       headers={**headers, "Content-Type": "image/png"})
            assert client.get(f"/api/v1/cases/{case}/bundle.pdf", headers=headers).status_code == 200
            one = _rss_kib(proc.pid)
            t0 = time.perf_counter()
            for _ in range(bundles - 1):
                assert client.get(f"/api/v1/cases/{case}/bundle.pdf", headers=headers).status_code == 200
            per = (time.perf_counter() - t0) / max(1, bundles - 1)
            after = _rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return ["| moment | RSS |", "|---|---:|",
            f"| after start-up (`/readyz` answered) | {started / 1024:.0f} MiB |",
            f"| after the first bundle (fonts loaded) | {one / 1024:.0f} MiB |",
            f"| after {bundles} bundles | {after / 1024:.0f} MiB |",
            "", f"GET bundle.pdf over HTTP on that worker: {per * 1000:.0f} ms per bundle (mean of {bundles - 1} "
                "sequential requests, including authentication, database and audit log)."]


STARTUP = r"""
import json, time, sys
t0 = time.perf_counter()
import app.main
t1 = time.perf_counter()
from app.settings import Settings
s = Settings(env="development", database_url="sqlite:///" + sys.argv[1], data_dir=sys.argv[2])
app.main.create_app(s)
t2 = time.perf_counter()
from app.forms.fonts import load_fonts
load_fonts()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "create_app": t2 - t1, "fonts": t3 - t2}))
"""


def bench_startup(data_dir: Path, runs: int = 3) -> list[str]:
    """Fresh interpreters: import, create_app (definitions), fonts; medians."""
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", STARTUP, str(data_dir / "startup.db"), str(data_dir)], cwd=ROOT,  # noqa: S603
                             capture_output=True, text=True, check=True, env={**os.environ, "KAKANAI_LOG_LEVEL": "WARNING"})
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    return ["| step (fresh interpreter) | ms |", "|---|---:|",
            f"| `import app.main` (FastAPI, SQLAlchemy, reportlab, ...) | {med['import'] * 1000:.0f} |",
            f"| `create_app()` (load and check the form definitions) | {med['create_app'] * 1000:.0f} |",
            f"| fonts (IPAex + IPAmj, on the first PDF) | {med['fonts'] * 1000:.0f} |",
            f"| total | {sum(med.values()) * 1000:.0f} |"]


def _quiet() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("httpx", "alembic", "app"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmarks and print Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--bundles", type=int, default=100)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="a PostgreSQL server URL (a throw-away database is created on it)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-accel", action="store_true", help="without reportlab's C accelerator (for comparison)")
    args = parser.parse_args(argv)
    _quiet()
    print("### Machine\n")
    print("\n".join(machine()))
    print("\n### The model household's bundle vs the reportlab floor\n")
    rows, ctx = bench_bundle(args.runs)
    print("\n".join(rows))
    if args.profile:
        print("\n### Where the bundle's time goes (cProfile, own time, 5 bundles)\n")
        print("\n".join(bench_profile(ctx["forms"], ctx["options"])))
    print("\n### Cases created per second through the API\n")
    print("| database | cases | cases/s | ms per case |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="kakanai-perf-") as tmp:
        print(bench_cases(f"sqlite:///{Path(tmp) / 'cases.db'}", "SQLite (file, WAL)", args.cases, Path(tmp)))
        if args.postgres:
            url = create_postgres_database(args.postgres, prefix="kakanai_perf")
            try:
                print(bench_cases(url, "PostgreSQL (local server)", args.cases, Path(tmp)))
            finally:
                drop_postgres_database(url)
        print("\n### Memory of one worker\n")
        print("\n".join(bench_memory(args.bundles, Path(tmp))))
        print("\n### Start-up\n")
        print("\n".join(bench_startup(Path(tmp))))


if __name__ == "__main__":
    main()
