// Installs the mocked backend before the app starts (mock.html, view tests).

import { mockIPC, mockWindows } from '@tauri-apps/api/mocks';
import { MockBackend } from './backend';

const backend = MockBackend.fromQuery(window.location.search);
mockWindows('main');
mockIPC((cmd, args) => backend.handle(cmd, (args ?? {}) as Record<string, unknown>));
(window as unknown as { __tandemMock: MockBackend }).__tandemMock = backend;
