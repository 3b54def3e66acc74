"""The worker: a second process that holds MLflow for a run (traces, scores, runs, report,
registry), so the calls' process never imports it.

Why a process and not a thread: MLflow's store spends about 2 ms of Python CPU per trace. In a
thread, that CPU competes for the GIL with the event loop that times the calls. Measured here
(1,000 calls at concurrency 16 against a 100 ms server), a writer thread stretched the recorded
p95 latency from 154 to 178 ms and, against a 0 ms server, made the run 2x slower than the raw
SDK. MLflow's import and store also cost seconds of CPU and over 100 MB per process: paid once.

The parts, in the order a call record travels:

    protocol.py   every message, a frozen dataclass; the protocol's version
    pool.py       the processes (`python -m llmflow.worker`), started early, kept between runs
    client.py     WorkerClient: the parent's side (session.py holds one per run)
    main.py       the worker's entry point (its process prepared by _process.py)
    context.py    the parent's context adopted per run; MLflow's retries per store task
    server.py     the worker's loop: batches of calls, tasks in order
    tracing.py    RunState: the calls kept, scored and traced
    handlers.py   one handler per store task, in one table
    finish.py     the end of a run, from the calls the worker kept (one request)

Kept light: `llmflow run` imports pool.py first, to start a worker before anything heavy.
"""
