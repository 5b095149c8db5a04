@echo off
rem Install TextPromptIR on Windows: from cmd or PowerShell, or by double-clicking it.
rem   .\installer\setup.cmd              install or repair, then verify
rem   .\installer\setup.cmd --uninstall  remove exactly what it added
rem It runs setup.ps1 beside it, whatever PowerShell's script execution policy says.
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0setup.ps1" %*
set status=%errorlevel%
rem Double-clicked, the window would close before the summary can be read.
echo %cmdcmdline% | find /i "%~0" >nul
if not errorlevel 1 pause
exit /b %status%
