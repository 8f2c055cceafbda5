// The page: drives the WebAssembly build of csrc/web.c (game, rasterizer, agent) and draws its
// frames on the canvas. Everything it shows about the parameters (names, ranges, choices,
// messages) comes from the C table through the module.
//
// URL options: ?seed=N fixes the pipes (default: a random seed per game), ?mode=play starts in
// play mode, ?speed=4 or ?speed=max, ?paused=1 starts paused, ?bench=1 runs the benchmark
// (&seconds=S per timed window), and any parameter of the C table (?gap=120). An option or
// value the page does not know is refused with a message on the page, and the default used.
"use strict";

const FPS = 30;                      // game frames per second at 1x
const MAX_SPEED_BUDGET_MS = 12;      // at full speed: stepping time per animation frame
const MAIN_PARAMS = ["difficulty", "gap", "pipe_speed", "pipe_spacing", "gravity", "flap_speed"];
const MORE_PARAMS = ["max_fall_speed", "gap_spread", "pipe_speed_spread", "pipe_spacing_spread",
  "gravity_spread", "max_steps"];
const BENCH_SIZES = [1, 64, 1024, 4096];
const BENCH_WINDOWS = 3;
const POLICY_DESCRIPTION = "policy.txt";
const POLICY_WEIGHTS = "policy.bin";

const query = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// The URL's options other than the parameters: each one's valid values (a check), and where
// the page reads it.
const URL_OPTIONS = {
  seed: (text) => /^[0-9]+$/.test(text) && Number.isSafeInteger(Number(text)),  // what web_restart takes
  mode: (text) => text === "play" || text === "watch",
  speed: (text) => [...$("speed").options].some((option) => option.value === text),
  paused: (text) => text === "0" || text === "1",
  bench: (text) => text === "0" || text === "1",
  seconds: (text) => Number(text) > 0 && Number(text) <= 60,
};
const URL_EXPECTED = {
  seed: "a whole number in [0, 2^53)", mode: "play or watch", speed: "one of the speed menu's values",
  paused: "0 or 1", bench: "0 or 1", seconds: "a number of seconds in (0, 60]",
};

// The value of URL option `name` if it is valid, else null (checkURL says why).
function urlOption(name) {
  return query.has(name) && URL_OPTIONS[name](query.get(name)) ? query.get(name) : null;
}

// What is wrong with the URL: an option the page does not know, or a value it does not take.
function checkURL(paramNames) {
  const problems = [];
  for (const [name, text] of query) {
    if (name in URL_OPTIONS) {
      if (!URL_OPTIONS[name](text)) problems.push(`?${name}= must be ${URL_EXPECTED[name]}, got '${text}'`);
    } else if (!paramNames.includes(name)) {
      problems.push(`unknown URL option '${name}'`);
    }
  }
  return problems;
}

// Load the exported policy into the module: null, or why not (the page then offers play only).
async function loadAgent(M) {
  let description, bytes;
  try {
    const [d, w] = await Promise.all([fetch(POLICY_DESCRIPTION), fetch(POLICY_WEIGHTS)]);
    if (!d.ok || !w.ok) return "no policy in this folder: play yourself";
    description = await d.text();
    bytes = await w.arrayBuffer();
  } catch (error) {
    return "no policy could be read: play yourself";
  }
  if (bytes.byteLength % 4 !== 0) {
    return `cannot load the agent: ${POLICY_WEIGHTS} holds ${bytes.byteLength} bytes, ` +
      "not whole float32 values; play yourself";
  }
  const weights = new Float32Array(bytes);
  const address = M._malloc(Math.max(weights.byteLength, 4));
  M.HEAPF32.set(weights, address / 4);
  const status = M.ccall("web_agent_load", "number", ["string", "number", "number"],
    [description, address, weights.length]);
  M._free(address);
  return status === 0 ? null : `cannot load the agent: ${M.UTF8ToString(M._web_message())}; play yourself`;
}

function makeGame(M, agentError) {
  const canvas = $("screen");
  const context = canvas.getContext("2d");
  const width = M._web_frame_width(), height = M._web_frame_height();
  canvas.width = width;
  canvas.height = height;

  const fixedSeed = urlOption("seed") !== null ? Number(urlOption("seed")) : null;
  const game = {
    hasAgent: agentError === null,
    mode: agentError === null && urlOption("mode") !== "play" ? "watch" : "play",
    takeover: false,           // a key or the button is held: you fly instead of the agent
    paused: urlOption("paused") === "1",
    waiting: false,            // play mode: frozen on an episode's first frame until a flap
    speed: 1,                  // game frames per 1/30 s, or Infinity
    pendingFlap: false,        // a press since the last frame: the next frame flaps
    seed: 0,
    best: 0,
    flapProbability: NaN,
    actions: [],               // this game's actions, frame by frame (for replay and tests)
    agentActions: [],          // what the agent chose on those frames
    scores: [],                // the scores of the episodes this game has finished
    framesDrawn: 0,
    stepsDue: 0,
  };

  function restart(seed) {
    game.seed = seed !== undefined ? seed : fixedSeed !== null ? fixedSeed : Math.floor(Math.random() * 2 ** 31);
    if (M._web_restart(game.seed) !== 0) showMessage(M.UTF8ToString(M._web_message()));
    game.actions = [];
    game.agentActions = [];
    game.scores = [];
    game.waiting = game.mode === "play";
    game.pendingFlap = false;
    draw();
  }

  function humanFlies() {
    return game.mode === "play" || game.takeover;
  }

  function step() {
    const agentAction = game.hasAgent ? M._web_agent_act() : 0;
    if (game.hasAgent) game.flapProbability = M._web_agent_flap_probability();
    const action = humanFlies() ? (game.pendingFlap ? 1 : 0) : agentAction;
    game.pendingFlap = false;
    const ended = M._web_step(action);
    game.actions.push(action);
    game.agentActions.push(agentAction);
    if (ended) game.scores.push(M._web_last_score());
    game.best = Math.max(game.best, ended ? M._web_last_score() : M._web_score());
    if (ended && game.mode === "play") game.waiting = true;
    return ended;
  }

  function draw() {
    const address = M._web_frame();
    context.putImageData(new ImageData(new Uint8ClampedArray(M.HEAPU8.buffer, address, width * height * 4),
      width, height), 0, 0);
    game.framesDrawn += 1;
  }

  function flap() {
    if (!humanFlies()) return;
    game.pendingFlap = true;
    game.waiting = false;
  }

  function showMessage(text) {
    $("message").textContent = text;
  }

  // -- the loop: game frames at speed x 30 per second, drawn once per animation frame --------
  let lastTime = null, rateFrames = 0, rateStart = performance.now();
  function tick(now) {
    const elapsed = lastTime === null ? 0 : Math.min(now - lastTime, 250);
    lastTime = now;
    let stepped = 0;
    if (!game.paused && !game.waiting) {
      if (game.speed === Infinity) {
        const end = performance.now() + MAX_SPEED_BUDGET_MS;
        do {
          for (let k = 0; k < 64 && !game.waiting; k++, stepped++) step();
        } while (performance.now() < end && !game.waiting);
      } else {
        // a step is frame_skip frames: fewer steps keep the game's frames at FPS
        game.stepsDue += elapsed * FPS * game.speed / 1000 / M._web_frame_skip();
        for (; game.stepsDue >= 1 && !game.waiting; game.stepsDue -= 1, stepped++) step();
        if (game.waiting) game.stepsDue = 0;
      }
    } else {
      game.stepsDue = 0;
    }
    if (stepped > 0) {
      draw();
      rateFrames += stepped;
    }
    if (now - rateStart >= 1000) {
      $("rate").textContent = `${Math.round(rateFrames * 1000 / (now - rateStart)).toLocaleString("en")} game frames/s`;
      rateFrames = 0;
      rateStart = now;
    }
    updateHud();
    requestAnimationFrame(tick);
  }

  function updateHud() {
    $("score").textContent = M._web_score();
    $("best").textContent = game.best;
    $("controller").textContent = humanFlies() ? "you" : "the agent";
    const p = game.flapProbability;
    $("flap-meter").value = Number.isNaN(p) ? 0 : p;
    $("flap-probability").textContent = Number.isNaN(p) ? "-" : p.toFixed(3);
    $("watch").setAttribute("aria-pressed", game.mode === "watch");
    $("play").setAttribute("aria-pressed", game.mode === "play");
    $("takeover").setAttribute("aria-pressed", game.takeover);
    $("pause").textContent = game.paused ? "Resume" : "Pause";
    const overlay = game.paused ? "paused" : game.waiting ? "flap to start" : null;
    $("overlay").hidden = overlay === null;
    $("overlay").textContent = overlay || "";
  }

  // -- input ---------------------------------------------------------------------------------
  function setMode(mode) {
    if (mode === "watch" && !game.hasAgent) return;
    game.mode = mode;
    restart();
  }
  function setTakeover(held) {
    game.takeover = held && game.mode === "watch";
    updateHud();  // the button shows it is held now, not at the next animation frame
  }
  window.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    if (event.key === " " || event.key === "ArrowUp") {
      event.preventDefault();
      if (!event.repeat) flap();
    } else if (event.key === "Shift") {
      setTakeover(true);
    } else if (event.key === "p" || event.key === "P") {
      game.paused = !game.paused;
    } else if (event.key === "r" || event.key === "R") {
      restart();
    }
  });
  window.addEventListener("keyup", (event) => {
    if (event.key === "Shift") setTakeover(false);
  });
  window.addEventListener("blur", () => setTakeover(false));
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    flap();
  });
  const takeover = $("takeover");
  takeover.addEventListener("pointerdown", () => setTakeover(true));
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) {
    takeover.addEventListener(name, () => setTakeover(false));
  }
  $("watch").addEventListener("click", () => setMode("watch"));
  $("play").addEventListener("click", () => setMode("play"));
  $("pause").addEventListener("click", () => { game.paused = !game.paused; });
  $("restart").addEventListener("click", () => restart());
  $("speed").addEventListener("change", (event) => {
    game.speed = event.target.value === "max" ? Infinity : Number(event.target.value);
  });
  if (!game.hasAgent) {
    $("watch").disabled = true;
    $("takeover").disabled = true;
    $("watch").title = agentError;
  }
  const speed = urlOption("speed");
  if (speed !== null) {
    $("speed").value = speed;
    game.speed = speed === "max" ? Infinity : Number(speed);
  }

  // -- parameters, from the C table ------------------------------------------------------------
  const params = {};
  for (let i = 0; i < M._web_num_params(); i++) {
    params[M.UTF8ToString(M._web_param_name(i))] = i;
  }
  const paramValue = (i) => M.UTF8ToString(M._web_param_value(i));

  // Set a parameter from text: "" when the C table accepts it (the game restarts with it), else
  // the table's message.
  function setParam(name, text) {
    const ok = M.ccall("web_set_param", "number", ["string", "string"], [name, text]) === 0;
    const message = ok ? "" : M.UTF8ToString(M._web_message());
    showMessage(message);
    const input = document.querySelector(`[name="${name}"]`);
    if (input) input.setAttribute("aria-invalid", !ok);
    if (ok) restart(game.seed);
    return message;
  }

  function addControl(name, container) {
    const i = params[name];
    const label = document.createElement("label");
    label.className = "param";
    label.title = M.UTF8ToString(M._web_param_doc(i));
    label.append(name.replaceAll("_", " "));
    let control;
    if (M._web_param_num_choices(i) > 0) {
      control = document.createElement("select");
      for (let k = 0; k < M._web_param_num_choices(i); k++) {
        control.add(new Option(M.UTF8ToString(M._web_param_choice(i, k))));
      }
    } else {
      control = document.createElement("input");
      control.type = "text";
      control.inputMode = "decimal";
      control.placeholder = `${M._web_param_min(i)} to ${M._web_param_max(i)}`;
      label.title += ` (from ${M._web_param_min(i)} to ${M._web_param_max(i)})`;
    }
    control.name = name;
    control.value = paramValue(i);
    control.addEventListener("change", () => setParam(name, control.value));
    label.append(control);
    container.append(label);
  }
  function refreshControls() {
    for (const control of $("params").querySelectorAll("[name]")) {
      control.value = paramValue(params[control.name]);
      control.setAttribute("aria-invalid", false);
    }
  }
  MAIN_PARAMS.forEach((name) => addControl(name, $("main-params")));
  MORE_PARAMS.forEach((name) => addControl(name, $("more-params")));
  $("params").addEventListener("submit", (event) => event.preventDefault());
  $("defaults").addEventListener("click", () => {
    M._web_default_params();
    refreshControls();
    showMessage("");
    restart(game.seed);
  });

  // ?gap=120&difficulty=hard...: parameters from the URL, through the table like typed ones; the
  // page shows why the agent, an option or a parameter could not be used.
  const problems = agentError !== null ? [agentError] : [];
  problems.push(...checkURL(Object.keys(params)));
  for (const [name, text] of query) {
    const message = name in params ? setParam(name, text) : "";
    if (message !== "") problems.push(message);
  }
  showMessage(problems.join("; "));
  refreshControls();
  restart();
  requestAnimationFrame(tick);

  // What tests and scripts drive: the same calls the controls make, and a look at the state.
  return {
    restart,
    setParam,
    setMode,
    // n steps now (frame_skip frames each), whatever the pause (step by step while paused), then draw
    advance(n) {
      for (let k = 0; k < n; k++) step();
      draw();
    },
    pause(paused) { game.paused = paused; },
    state() {
      return {
        mode: game.mode, controller: humanFlies() ? "you" : "agent", paused: game.paused,
        waiting: game.waiting, seed: game.seed, score: M._web_score(), best: game.best,
        lastScore: M._web_last_score(), flapProbability: game.flapProbability, hasAgent: game.hasAgent,
        frames: game.actions.length, episodes: game.scores.length, scores: game.scores.slice(),
        framesDrawn: game.framesDrawn, message: $("message").textContent,
      };
    },
    actions: () => game.actions.slice(),
    agentActions: () => game.agentActions.slice(),
  };
}

// -- benchmark: steps per second of the core, measured as `puffer bench` measures -------------
// The median of BENCH_WINDOWS windows of `seconds`, after a warm-up of half a window that also
// sizes the batches of calls between clock reads (about a millisecond each).
function measure(run, perCall, seconds) {
  let batch = 1;
  const rates = [];
  for (let window = -1; window < BENCH_WINDOWS; window++) {
    const duration = (window < 0 ? seconds / 2 : seconds) * 1000;
    let calls = 0, end;
    const start = performance.now();
    for (;;) {
      const batchStart = performance.now();
      run(batch);
      calls += batch;
      end = performance.now();
      if (window < 0 && end - batchStart < 1) batch *= 2;
      if (end - start >= duration) break;
    }
    if (window >= 0) rates.push(calls * perCall * 1000 / (end - start));
  }
  rates.sort((a, b) => a - b);
  return { median: rates[Math.floor(rates.length / 2)], windows: rates };
}

async function runBench(M, api) {
  $("bench").hidden = false;
  api.pause(true);
  const seconds = Number(urlOption("seconds") || 2);
  const results = [];
  const show = (name, envs, result, unit) => {
    results.push({ name, envs, ...result });
    const row = $("bench-rows").insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = envs;
    row.insertCell().textContent = `${(result.median / 1e6).toFixed(2)} M ${unit}`;
  };
  const pause = () => new Promise((resolve) => setTimeout(resolve, 0));
  for (const envs of BENCH_SIZES) {
    await pause(); // let the page show the rows so far
    if (M._web_bench_init(envs) !== 0) throw new Error(M.UTF8ToString(M._web_message()));
    show("core step (web_bench_step)", envs, measure((calls) => M._web_bench_step(calls), envs, seconds), "steps/s");
  }
  await pause();
  show("frame: draw and putImageData", 1, measure((calls) => {
    for (let k = 0; k < calls; k++) api.advance(0);
  }, 1, seconds), "frames/s");
  if (api.state().hasAgent) {
    await pause();
    show("agent and step (the page at full speed)", 1, measure((calls) => {
      for (let k = 0; k < calls; k++) M._web_step(M._web_agent_act());
    }, 1, seconds), "frames/s");
  }
  $("bench-status").textContent = `done: ${BENCH_WINDOWS} windows of ${seconds} s each`;
  return results;
}

createFlappyModule().then(async (M) => {
  const agentError = await loadAgent(M);
  const api = makeGame(M, agentError);
  window.flappy = api;
  if (urlOption("bench") === "1") {
    window.flappyBench = await runBench(M, api);
  }
  window.flappyReady = true;
});
