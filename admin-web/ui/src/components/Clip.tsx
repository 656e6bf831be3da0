// A table cell's text that may be long (names and model globs of up to
// 128 characters): cut to a width with an ellipsis, the whole of it in its
// title, so one long name does not push the other columns and the row's
// buttons off the screen.
import { Text } from '@mantine/core';

export function Clip({ text, width = 220 }: { text: string; width?: number }) {
  return (
    <Text size="sm" truncate="end" maw={width} title={text}>
      {text}
    </Text>
  );
}
