// A number typed as text and checked by the caller (../validate.ts): what is
// typed stays as typed, and an invalid value shows its message by the
// field instead of being clamped or rounded into another number.
import { TextInput, type TextInputProps } from '@mantine/core';

export function NumberField({
  value,
  onChange,
  decimal = false,
  ...rest
}: Omit<TextInputProps, 'value' | 'onChange'> & {
  value: string;
  onChange: (v: string) => void;
  decimal?: boolean;
}) {
  return (
    <TextInput
      {...rest}
      inputMode={decimal ? 'decimal' : 'numeric'}
      autoComplete="off"
      value={value}
      onChange={(e) => onChange(e.currentTarget.value)}
    />
  );
}
