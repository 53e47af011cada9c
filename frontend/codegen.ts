import type { CodegenConfig } from '@graphql-codegen/cli'
import { existsSync, readdirSync } from 'node:fs'

// The schema is the backend's (graph/schema/*.graphqls). Until it lands the
// provisional copy in schema/provisional stands in.
const real = '../graph/schema'
const hasReal = existsSync(real) && readdirSync(real).some((f) => f.endsWith('.graphqls'))
const schema = hasReal ? `${real}/*.graphqls` : './schema/provisional/*.graphqls'

const config: CodegenConfig = {
  schema,
  documents: ['src/**/*.ts', 'src/**/*.vue', '!src/gql/**/*'],
  ignoreNoDocuments: true,
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { ID: 'string', Cursor: 'string', Time: 'string', Map: 'Record<string, unknown>' },
      },
    },
  },
}

export default config
