// smartcell operator station: the server pushes the cell's state over a WebSocket; buttons POST
// actions with the bearer token of the login (kept in this tab only, never in a cookie).
'use strict';

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('smartcell-token') || '';
let who = sessionStorage.getItem('smartcell-user') || '';

function stepText(step) {
  if (!step || Object.keys(step).length === 0) return 'nothing to do';
  const station = step.station ? ` at ${step.station}` : '';
  const unit = step.unit !== undefined ? ` (unit ${step.unit})` : '';
  const note = step.note ? ` – ${step.note}` : '';
  return `${step.step}${station}${unit}${note}`;
}

function fmt(value, digits, unit) {
  return typeof value === 'number' ? value.toFixed(digits) + (unit || '') : (value === null ? '–' : String(value));
}

function render(s) {
  $('cell-id').textContent = s.cell_id || '';
  $('cell-state').textContent = s.cell_state || '–';
  $('current-step').textContent = stepText(s.current_step);
  $('next-step').textContent = stepText(s.next_step);
  const v = s.verdict || {};
  const safety = $('safety-state');
  safety.textContent = v.state || '–';
  safety.className = 'big ' + ({ running: 'ok', reduced_speed: 'warn' }[v.state] || (v.state ? 'bad' : ''));
  $('safety-detail').textContent = v.state
    ? `zone ${v.zone} · separation ${fmt(v.separation_m, 2, ' m')} · S_p ${fmt(v.protective_distance_m, 2, ' m')}` +
      ` · mode ${v.mode}` + (v.reason ? ` · ${v.reason}` : '')
    : 'no verdict yet';
  const scale = s.speed_scale;
  $('speed-scale').textContent = typeof scale === 'number' ? `${Math.round(scale * 100)} %` : '–';
  $('speed-bar').style.width = typeof scale === 'number' ? `${scale * 100}%` : '0';
  const fatigue = s.fatigue;
  $('fatigue').textContent = typeof fatigue === 'number' ? fatigue.toFixed(2) : '–';
  $('fatigue-hint').textContent = typeof fatigue !== 'number' ? 'no wearable data'
    : fatigue > 0.7 ? 'take a break: the robot takes over more steps' : fatigue > 0.4 ? 'moderate load' : 'fresh';
  const problems = Object.entries(s.problems || {}).map(([k, p]) => `${k}: ${p}`);
  $('problems').textContent = problems.join(' · ');
  document.body.dataset.version = s.version;
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.onopen = () => { $('connection').textContent = 'live'; $('connection').className = 'ok'; };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === 'state') render(message.state);
  };
  ws.onclose = () => {
    $('connection').textContent = 'disconnected: retrying';
    $('connection').className = 'bad';
    setTimeout(connect, 1000);
  };
}

function showLogin() {
  $('who').textContent = who ? `logged in as ${who}` : 'not logged in (view only)';
  $('logout-button').hidden = !token;
}

function say(text, ok) {
  const message = $('message');
  message.textContent = text;
  message.className = 'small ' + (ok ? 'ok' : 'bad');
}

async function act(name) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(`/api/action/${name}`, { method: 'POST', headers, body: '{}' });
    const body = await response.json();
    say(`${name}: ${body.message || (body.ok ? 'done' : 'refused')}`, body.ok);
    if (response.status === 401) { token = ''; who = ''; sessionStorage.clear(); showLogin(); }
  } catch (error) {
    say(`${name}: ${error}`, false);
  }
}

async function login(event) {
  event.preventDefault();
  const response = await fetch('/api/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: $('user').value, password: $('password').value }),
  });
  const body = await response.json();
  $('password').value = '';
  if (!response.ok) { say(`login: ${body.message}`, false); return; }
  token = body.token;
  who = `${body.user} (${body.role})`;
  sessionStorage.setItem('smartcell-token', token);
  sessionStorage.setItem('smartcell-user', who);
  say(`logged in as ${who}`, true);
  showLogin();
}

async function logout() {
  await fetch('/api/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  token = ''; who = ''; sessionStorage.clear(); showLogin(); say('logged out', true);
}

document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('button[data-action]').forEach((b) => b.addEventListener('click', () => act(b.dataset.action)));
  $('login-form').addEventListener('submit', login);
  $('logout-button').addEventListener('click', logout);
  showLogin();
  connect();
});
