// Oracle for tests/compat/test_semver_differential.py.
//
// Reads {"versions": [...], "ranges": [...]} as JSON on stdin and prints, as JSON, what the
// real npm `semver` package (pinned in package.json) answers for every input:
//   semver:     the package version that answered
//   valid:      semver.valid(v) for each version (string or null)
//   validRange: semver.validRange(r) for each range (string or null)
//   satisfies, gtr, ltr: one string per version, one character per range:
//               "1" true, "0" false, "E" threw
//   compare:    one string per version, one character per version: "<", "=", ">" or "E"
const fs = require('fs')
const semver = require('semver')

const input = JSON.parse(fs.readFileSync(0, 'utf8'))
const versions = input.versions
const ranges = input.ranges

const flag = (fn) => {
  try {
    return fn() ? '1' : '0'
  } catch (er) {
    return 'E'
  }
}

const sign = (fn) => {
  try {
    const c = fn()
    return c < 0 ? '<' : c > 0 ? '>' : '='
  } catch (er) {
    return 'E'
  }
}

const row = (v, fn) => ranges.map((r) => flag(() => fn(v, r))).join('')

const out = {
  semver: require('semver/package.json').version,
  valid: versions.map((v) => semver.valid(v)),
  validRange: ranges.map((r) => semver.validRange(r)),
  satisfies: versions.map((v) => row(v, semver.satisfies)),
  gtr: versions.map((v) => row(v, semver.gtr)),
  ltr: versions.map((v) => row(v, semver.ltr)),
  compare: versions.map((a) => versions.map((b) => sign(() => semver.compare(a, b))).join('')),
}

process.stdout.write(JSON.stringify(out))
