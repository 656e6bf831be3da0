import { notifications } from '@mantine/notifications';
import { errorText } from './States';

export function notifyError(title: string, error: unknown) {
  notifications.show({ color: 'red', title, message: errorText(error), autoClose: 8000 });
}

export function notifyDone(message: string) {
  notifications.show({ color: 'teal', message, autoClose: 3000 });
}
