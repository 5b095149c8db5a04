# Install TextPromptIR on Windows: the environment in .\.venv, the Krita and GIMP plugins,
# and a check that restores the shipped sample (astronaut-restored.png).
#
#   .\installer\setup.cmd              # install or repair, then verify (setup.cmd runs this script)
#   .\installer\setup.cmd --uninstall  # remove exactly what it added
#   .\installer\setup.cmd --help       # more options
#
# The Windows twin of setup.sh: it only finds a Python 3.10+; installer\install.py does the work.

$root = Split-Path -Parent $PSScriptRoot
$probe = "import sys; sys.exit(sys.version_info < (3, 10))"

function Test-Python([string[]] $command) {
    # Whether the command runs a Python 3.10 or newer. The Microsoft Store's python.exe stand-in
    # only prints where to get Python and fails, so it is skipped like a missing one.
    if (-not $command[0] -or -not (Get-Command $command[0] -ErrorAction SilentlyContinue)) {
        return $false
    }
    $options = @($command | Select-Object -Skip 1)
    & $command[0] @options -c $probe 2>$null | Out-Null
    return $LASTEXITCODE -eq 0
}

# A Python pointed to with $env:PYTHON first, then the py launcher's newest Python 3, then PATH's.
foreach ($candidate in @(@($env:PYTHON), @("py", "-3"), @("python"), @("python3"))) {
    if (Test-Python $candidate) {
        $options = @($candidate | Select-Object -Skip 1)
        & $candidate[0] @options (Join-Path $root "installer\install.py") @args
        exit $LASTEXITCODE
    }
}
[Console]::Error.WriteLine("TextPromptIR needs Python 3.10 or newer, and none was found. Install one (python.org, or")
[Console]::Error.WriteLine("'winget install Python.Python.3.12'), or point to it: in PowerShell")
[Console]::Error.WriteLine("  `$env:PYTHON = 'C:\path\to\python.exe'; .\installer\setup.cmd")
[Console]::Error.WriteLine("or in cmd: set PYTHON=C:\path\to\python.exe, then .\installer\setup.cmd")
exit 1
